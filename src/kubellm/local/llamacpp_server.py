"""llama-cpp-python's OpenAI server, plus the two routes a kubellm replica needs.

``python -m kubellm.local.llamacpp_server ARGS`` takes exactly ``python -m
llama_cpp.server``'s arguments and serves the same app, adding:

- ``GET /health``: 200 once the model is loaded (the gateway and the supervisor probe it;
  llama-cpp-python's server has no health route of its own);
- ``GET /metrics``: the requests in flight, normalised here at the edge to the vLLM names
  the gateway and the autoscaler read: llama-cpp-python runs one request at a time (an
  outer lock), so one is ``vllm:num_requests_running`` and the rest are
  ``vllm:num_requests_waiting``. No KV-cache figure is exported (none is known).

Imported only in the engine process: llama_cpp is not a kubellm dependency.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, cast

_GENERATION_PREFIX = "/v1/"


class InFlight:
    """Counts generation requests between the first byte in and the last byte out."""

    def __init__(self) -> None:
        self.count = 0

    def exposition(self, model: str) -> str:
        running, waiting = min(self.count, 1), max(self.count - 1, 0)
        label = f'{{model_name="{model}"}}'
        return (
            "# HELP vllm:num_requests_running Requests being generated (llama-cpp-python runs one at a time).\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{label} {running}\n"
            "# HELP vllm:num_requests_waiting Requests waiting for the engine.\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{label} {waiting}\n"
        )


def _instrument(app: Any, model: str) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response

    in_flight = InFlight()

    @app.middleware("http")  # type: ignore[untyped-decorator]
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not request.url.path.startswith(_GENERATION_PREFIX) or request.method != "POST":
            return await call_next(request)
        in_flight.count += 1
        try:
            response = await call_next(request)
        except BaseException:
            in_flight.count -= 1
            raise
        # A streamed body is still being produced after call_next returns: count it
        # until the body iterator is done.
        body = getattr(response, "body_iterator", None)
        if body is None:
            in_flight.count -= 1
            return response

        async def tracked() -> Any:
            try:
                async for chunk in body:
                    yield chunk
            finally:
                in_flight.count -= 1

        response.body_iterator = tracked()  # type: ignore[attr-defined]
        return response

    app.add_api_route("/health", lambda: {"status": "ok"}, methods=["GET"])
    app.add_api_route("/metrics", lambda: PlainTextResponse(in_flight.exposition(model)), methods=["GET"])


def main() -> None:
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    parser = argparse.ArgumentParser(description="llama-cpp-python's server with /health and /metrics")
    add_args_from_model(parser, Settings)
    args = parser.parse_args()
    # parse_model_from_args is annotated as returning the class; it returns an instance.
    server = cast(ServerSettings, parse_model_from_args(ServerSettings, args))
    model = cast(ModelSettings, parse_model_from_args(ModelSettings, args))
    app = create_app(server_settings=server, model_settings=[model])  # loads the model
    _instrument(app, model.model_alias or model.model)
    uvicorn.run(app, host=server.host, port=server.port, log_level="warning")


if __name__ == "__main__":
    main()
