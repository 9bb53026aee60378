"""Secure pod templates: Pod Security Standard "restricted" by default.

Every container runs as a high non-root UID, with a read-only root filesystem, no
privilege escalation, all capabilities dropped and the RuntimeDefault seccomp profile; pods
mount no service account token. Writable paths are explicit emptyDirs (/tmp, /dev/shm).
"""

from __future__ import annotations

from typing import Any

from kubellm.render.commands import Command
from kubellm.render.context import Obj, RenderContext

TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def container_security() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(ctx: RenderContext) -> Obj:
    uid = ctx.service.spec.security.run_as_user
    return {
        "fsGroup": uid,
        "runAsGroup": uid,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def equal_resources(resources: dict[str, str]) -> Obj:
    """Requests equal to limits: Guaranteed QoS, no overcommit on inference nodes."""
    return {"requests": dict(resources), "limits": dict(resources)}


def env_list(pairs: tuple[tuple[str, str], ...]) -> list[Obj]:
    return [{"name": name, "value": value} for name, value in pairs]


def container(name: str, image: str, command: Command, resources: Obj, **extra: Any) -> Obj:
    body: Obj = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        "command": list(command.command),
        "args": list(command.args),
        "resources": resources,
        "securityContext": container_security(),
    }
    if command.env:
        body["env"] = env_list(command.env)
    body.update(extra)
    return body


def http_probes(port_name: str, startup_seconds: int) -> Obj:
    """Startup allows for slow weight loading; liveness then restarts a wedged engine."""
    probe = {"httpGet": {"path": "/health", "port": port_name}}
    return {
        "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": max(startup_seconds // 10, 3)},
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 3},
        "livenessProbe": {**probe, "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5},
    }


def exec_probes(argv: list[str]) -> Obj:
    probe = {"exec": {"command": argv}, "periodSeconds": 30, "timeoutSeconds": 10}
    return {"readinessProbe": probe, "livenessProbe": {**probe, "failureThreshold": 4}}


def pod_spec(ctx: RenderContext, containers: list[Obj], volumes: list[Obj], **extra: Any) -> Obj:
    spec: Obj = {
        "automountServiceAccountToken": False,
        "containers": containers,
        "enableServiceLinks": False,
        "securityContext": pod_security(ctx),
        "serviceAccountName": ctx.name,
        "volumes": volumes,
    }
    spec.update(extra)
    return spec
