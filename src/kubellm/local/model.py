"""Where the engine finds the model's files locally: nothing (sim), a file the user
names with ``--model-file``, or the local cache filled by ``kubellm pull``.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubellm.local.errors import ModelNotAvailableError
from kubellm.spec import LLMService
from kubellm.spec.checks import gguf_file


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kubellm``, else ``~/.cache/kubellm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubellm"


def resolve_model(service: LLMService, cache_dir: Path, model_file: Path | None) -> Path | None:
    """The path the engine loads (None for the simulator); pulls into *cache_dir* if needed."""
    spec = service.spec
    if spec.engine.kind == "sim":
        return None
    if model_file is not None:
        if not model_file.exists():
            raise ModelNotAvailableError(f"--model-file {model_file} does not exist; give the path of the model file")
        return model_file.resolve()
    directory = pull_model(spec.model.uri, cache_dir)
    if spec.engine.kind == "llamacpp":
        return _find_gguf(directory, gguf_file(service.spec))
    return directory


def _find_gguf(directory: Path, name: str | None) -> Path:
    if directory.is_file():
        return directory
    matches = sorted(directory.rglob(name or "*.gguf"))
    if not matches:
        raise ModelNotAvailableError(f"no {name or '.gguf file'} under {directory} after pulling")
    return matches[0]


def pull_model(uri: str, cache_dir: Path) -> Path:
    """Pull *uri* into *cache_dir* with kubellm.pull and return the local directory."""
    try:
        from kubellm.pull import pull_to_cache  # type: ignore[attr-defined]
    except ImportError:
        raise ModelNotAvailableError(
            f"cannot pull {uri}: this build of kubellm has no model puller (kubellm.pull). "
            "Download the file yourself and pass it with --model-file PATH"
        ) from None
    path: Path = pull_to_cache(uri, cache_dir)
    return path
