"""Which cluster the commands talk to: the kubeconfig, read once at the edge, as kubectl does.

Order: ``--kubeconfig`` (or ``$KUBECONFIG``), else the in-cluster service account, else
``~/.kube/config``; then ``--context`` (else the file's current context). Every way this
can fail becomes one ``KubeconfigError`` naming what was tried and how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from lightkube import ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig

from kubellm.operator.errors import Endpoint, KubeconfigError

DEFAULT_PATH = "~/.kube/config"
HOW_TO_CHOOSE = "give --kubeconfig PATH (or set KUBECONFIG), run inside a pod, or create ~/.kube/config"


def _from_file(path: str) -> KubeConfig:
    full = Path(path).expanduser()
    if not full.exists():
        raise KubeconfigError(f"kubeconfig {path} does not exist; {HOW_TO_CHOOSE}")
    if full.is_dir():
        raise KubeconfigError(f"kubeconfig {path} is a directory, not a file; {HOW_TO_CHOOSE}")
    try:
        return KubeConfig.from_file(full)
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise KubeconfigError(f"kubeconfig {path} is not a valid kubeconfig ({type(exc).__name__}: {exc})"[:400]) from exc
    except PermissionError as exc:
        raise KubeconfigError(f"kubeconfig {path} cannot be read: permission denied") from exc


def _discover() -> KubeConfig:
    try:
        return KubeConfig.from_service_account()
    except ConfigError:
        pass
    if not Path(DEFAULT_PATH).expanduser().exists():
        raise KubeconfigError(
            f"no cluster configured: {DEFAULT_PATH} does not exist, KUBECONFIG is not set and this is "
            f"not a pod (no in-cluster service account); {HOW_TO_CHOOSE}"
        )
    return _from_file(DEFAULT_PATH)


def _first(paths: str) -> str:
    """kubectl merges a $KUBECONFIG list; lightkube reads one file: the first that exists."""
    candidates = [p for p in paths.split(os.pathsep) if p]
    return next((p for p in candidates if Path(p).expanduser().exists()), candidates[0] if candidates else "")


def load(path: str | None, context: str | None = None) -> SingleConfig:
    """The configuration of *context* (default: current) from *path*, $KUBECONFIG or the defaults."""
    path = _first(path or os.environ.get("KUBECONFIG") or "") or None
    config = _from_file(path) if path else _discover()
    try:
        chosen = config.get(context_name=context)
    except ConfigError as exc:
        known = ", ".join(sorted(config.contexts)) or "none"
        where = path or "the kubeconfig"
        if context:
            raise KubeconfigError(f"context {context!r} is not in {where} (contexts: {known}); pick one with --context") from exc
        raise KubeconfigError(f"{where} sets no current-context (contexts: {known}); pick one with --context") from exc
    assert chosen is not None  # get() returns None only when given a default
    return chosen


def endpoint(config: SingleConfig) -> Endpoint:
    """Server, context and user names, for messages."""
    user = config.context.user or "-"
    return Endpoint(server=str(config.cluster.server), context=config.context_name, user=user)
