"""kubellm.local: run an LLMService on one machine (``kubellm up SPEC``), no cluster.

Engine replicas run as child processes (``kubellm sim``, llama.cpp's server, ``vllm
serve``), each in its own process group so that shutdown leaves nothing behind; the
gateway runs in the same process with an in-process registry of ready replicas; an
autoscaler loop applies :mod:`kubellm.autoscale`'s policy to the number of processes.

Modules: ``errors`` (the tree below), ``ports`` (free ports), ``engines`` (the command
line of each engine kind, pure), ``prereq`` (is the engine installed? fail fast),
``launchers`` (spec -> engine launcher), ``model`` (model files: none, --model-file, or
pulled into the cache), ``process`` (one child process: start, readiness, stop),
``metrics`` (scrape and normalise engine metrics), ``supervisor`` (the set of replicas),
``scaler`` (the autoscaler loop and the scale-from-zero activator), ``gateway_link``
(the gateway's config from the spec, served in-process), ``view`` (the live table),
``runner`` (the composition root), ``cli`` (``kubellm up``), ``llamacpp_server``
(llama-cpp-python's server plus /health and /metrics, run as the engine process),
``testing`` (run ``kubellm up`` from tests), ``tinygguf`` (a tiny random GGUF model).

Errors::

    LocalError                  local mode cannot go on; the message says what to do
    ├── PrerequisiteError       the engine the spec asks for is not installed here
    ├── ModelNotAvailableError  the model's files cannot be found or pulled
    └── EngineStartError        a replica exited or never became ready (log tail attached)
"""

from kubellm.local.errors import EngineStartError, LocalError, ModelNotAvailableError, PrerequisiteError

__all__ = ["EngineStartError", "LocalError", "ModelNotAvailableError", "PrerequisiteError"]
