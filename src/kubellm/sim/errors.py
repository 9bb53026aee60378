"""Errors of the simulator.

    SimError                      base of every error the simulator raises on purpose
    ├── SimConfigError            a bad option or profile name (the CLI prints it and exits 2)
    └── RequestError              an invalid OpenAI request; carries the HTTP status and
        │                         the OpenAI error ``type`` vLLM would send
        └── ModelNotFoundError    the request names a model (or LoRA) that is not served

The HTTP layer turns ``RequestError`` into vLLM's error body in one place
(:func:`kubellm.sim.openai_api.error_response`).
"""

from __future__ import annotations


class SimError(Exception):
    """Base of the simulator's errors."""


class SimConfigError(SimError):
    """An option or profile that cannot be used; the message names what to fix."""


class RequestError(SimError):
    """A request vLLM would reject, with the status and error type vLLM sends."""

    def __init__(self, message: str, status: int = 400, err_type: str = "BadRequestError",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.err_type = err_type
        self.param = param


class ModelNotFoundError(RequestError):
    """The requested model name is neither the base model nor a loaded LoRA adapter."""

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist.", status=404,
                         err_type="NotFoundError", param="model")
