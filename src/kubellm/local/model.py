"""Where the engine finds the model's files locally: nothing (sim), a file the user
names with ``--model-file``, or the local cache filled by ``kubellm pull``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from kubellm.local.errors import ModelNotAvailableError
from kubellm.spec import LLMService
from kubellm.spec.checks import gguf_file


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kubellm``, else ``~/.cache/kubellm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubellm"


def resolve_model(service: LLMService, cache_dir: Path, model_file: Path | None,
                  on_event: Callable[[str], None] = lambda _: None) -> Path | None:
    """The path the engine loads (None for the simulator); pulls into *cache_dir* if needed."""
    spec = service.spec
    if spec.engine.kind == "sim":
        return None
    if model_file is not None:
        if not model_file.exists():
            raise ModelNotAvailableError(f"--model-file {model_file} does not exist; give the path of the model file")
        return model_file.resolve()
    gguf = gguf_file(spec) if spec.engine.kind == "llamacpp" else None
    dest = model_cache_path(spec.model.uri, cache_dir)
    on_event(f"pulling {spec.model.uri} into {dest}")
    directory = pull_model(service, dest, gguf)
    return _find_gguf(directory, gguf) if spec.engine.kind == "llamacpp" else directory


def model_cache_path(uri: str, cache_dir: Path) -> Path:
    """Where *uri* is cached: readable last segment plus a digest of the whole URI."""
    segment = re.sub(r"[^A-Za-z0-9._-]", "-", uri.rstrip("/").rsplit("/", 1)[-1]) or "model"
    return cache_dir / "models" / f"{segment}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


def _find_gguf(directory: Path, name: str | None) -> Path:
    if directory.is_file():
        return directory
    matches = sorted(directory.rglob(name or "*.gguf"))
    if not matches:
        raise ModelNotAvailableError(f"no {name or '.gguf file'} under {directory} after pulling")
    return matches[0]


def pull_model(service: LLMService, dest: Path, gguf: str | None) -> Path:
    """Pull the spec's model into *dest* with kubellm.pull (a no-op when already complete)."""
    from kubellm.pull import PullError, PullOptions, SourceSettings, pull

    model = service.spec.model
    allow = model.allow_patterns or ((gguf,) if gguf and not model.uri.endswith(gguf) else ())
    options = PullOptions(allow_patterns=allow, ignore_patterns=model.ignore_patterns,
                          allow_pickle=model.allow_pickle, verify="size")
    try:
        result = pull(model.uri, dest, options, SourceSettings.from_env(os.environ))
    except PullError as exc:
        raise ModelNotAvailableError(f"cannot pull {model.uri}: {exc}; or download the file yourself and pass "
                                     "--model-file PATH") from exc
    return result.dest
