"""Why an LLMService's pods do not run: for each container that is stuck (waiting with a
reason such as ImagePullBackOff or CrashLoopBackOff) or that exited with an error, the pod,
the container, the reason, its last log lines and what to do. ``failures`` is pure (pods in,
findings out); ``commands.pod_failures`` reads the pods and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOG_LINES = 10
_PULL = ("the node cannot pull the image: check its name and tag, that the nodes can reach its registry and any "
         "imagePullSecrets; kubellm install/apply --image names kubellm's own")
HINTS: dict[str, str] = {
    "ImagePullBackOff": _PULL,
    "ErrImagePull": _PULL,
    "InvalidImageName": "the image reference is malformed: fix engine.image or --image",
    "CrashLoopBackOff": "the container keeps exiting: its last log lines say why; fix the spec (engine.extraArgs, "
                        "model, resources) and apply it again",
    "CreateContainerConfigError": "a Secret or ConfigMap the pod needs is missing or lacks a key: create it "
                                  "(model.credentials names the Secret of the loader)",
    "CreateContainerError": "the runtime could not create the container: read the message",
    "RunContainerError": "the runtime could not start the command: check the image has it",
    "OOMKilled": "the container ran out of memory: raise resources.memory",
    "Error": "the container exited with an error: its last log lines say why",
}
# Waiting reasons that are part of a normal start, not a failure.
_NORMAL = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class PodFailure:
    pod: str
    container: str
    reason: str
    message: str = ""
    exit_code: int | None = None
    restarts: int = 0
    logs: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        return HINTS.get(self.reason, "see the message and the container's log")

    @property
    def restarted(self) -> bool:
        """Whether the log to read is the previous run's (the current one may not have begun)."""
        return self.restarts > 0

    def lines(self) -> list[str]:
        """The failure as a user reads it: what, the log's tail, what to do."""
        exit_code = f", exit code {self.exit_code}" if self.exit_code is not None else ""
        head = f"pod {self.pod}, container {self.container}: {self.reason}{exit_code}, {self.restarts} restarts"
        out = [head + (f": {self.message}" if self.message else "")]
        if self.logs:
            out.append(f"  last {len(self.logs)} log lines:")
            out += [f"    {line}" for line in self.logs]
        out.append(f"  what to do: {self.hint}")
        return out


def _terminated(status: dict[str, Any]) -> dict[str, Any]:
    state = status.get("state") or {}
    last = status.get("lastState") or {}
    return dict(state.get("terminated") or last.get("terminated") or {})


def _container_failure(pod: str, status: dict[str, Any]) -> PodFailure | None:
    waiting = (status.get("state") or {}).get("waiting") or {}
    terminated = _terminated(status)
    failed_exit = terminated.get("exitCode") not in (None, 0)
    reason = str(waiting.get("reason") or "")
    if reason in _NORMAL or (not reason and not failed_exit):
        return None
    if not reason or (reason == "CrashLoopBackOff" and terminated.get("reason") == "OOMKilled"):
        reason = str(terminated.get("reason") or "Error")
    exit_code = terminated.get("exitCode")
    message = str(waiting.get("message") or terminated.get("message") or "").strip().splitlines()
    return PodFailure(
        pod=pod,
        container=str(status.get("name", "")),
        reason=reason,
        message=message[0][:300] if message else "",
        exit_code=int(exit_code) if exit_code is not None else None,
        restarts=int(status.get("restartCount", 0)),
    )


def failures(pods: list[dict[str, Any]]) -> list[PodFailure]:
    """Every stuck or failed container of *pods*, init containers first, by pod name."""
    found = []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            failure = _container_failure(str(pod["metadata"]["name"]), container)
            if failure is not None:
                found.append(failure)
    return found
