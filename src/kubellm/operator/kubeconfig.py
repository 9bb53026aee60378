"""Which cluster the commands talk to: the kubeconfig, read once at the edge, as kubectl does.

Order: ``--kubeconfig`` (or ``$KUBECONFIG``), else the in-cluster service account, else
``~/.kube/config``; then ``--context`` (else the file's current context). Every way this
can fail becomes one ``KubeconfigError`` naming what was tried and how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from lightkube import ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import User

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


def _absolute(config: SingleConfig, path: str | None) -> str | None:
    return str(config.abs_file(path)) if path else None


def _token(user: User) -> str | None:
    if user.token or not user.token_file:
        return user.token
    return Path(user.token_file).expanduser().read_text().strip()


def login_fields(config: SingleConfig) -> dict[str, Any]:
    """``kopf.ConnectionInfo`` fields for *config*: kopf's own kubeconfig login knows only the
    current context, so `kubellm operator --context` logs kopf in with these (built here, as
    data, so that this module never imports kopf)."""
    cluster, user = config.cluster, config.user or User()
    return {
        "server": cluster.server, "insecure": cluster.insecure, "default_namespace": config.context.namespace,
        "ca_path": _absolute(config, cluster.certificate_auth), "ca_data": cluster.certificate_auth_data,
        "certificate_path": _absolute(config, user.client_cert), "certificate_data": user.client_cert_data,
        "private_key_path": _absolute(config, user.client_key), "private_key_data": user.client_key_data,
        "username": user.username, "password": user.password, "token": _token(user),
    }
