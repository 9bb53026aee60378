"""Which containers of a service's pods are stuck or failed, and what the user is told
(operator/podfailures.py): table-driven over container statuses as the kubelet writes them."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.operator.podfailures import HINTS, PodFailure, failures


def _pod(name: str, *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"containerStatuses": list(containers), "initContainerStatuses": list(init)}}


CRASH = {
    "name": "engine", "restartCount": 3,
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
    "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
}
PULL = {"name": "engine", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}}}
RUNNING = {"name": "engine", "restartCount": 0, "state": {"running": {}}}
CREATING = {"name": "engine", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
DONE = {"name": "pull", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
LOADER_FAILED = {"name": "pull", "restartCount": 1, "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "NoSuchKey\nmore"}}}
OOM = {"name": "engine", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
       "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (CRASH, PodFailure("p", "engine", "CrashLoopBackOff", "back-off 40s restarting failed container", 2, 3)),
        (PULL, PodFailure("p", "engine", "ImagePullBackOff", 'Back-off pulling image "nope:1"', None, 0)),
        (LOADER_FAILED, PodFailure("p", "pull", "Error", "NoSuchKey", 1, 1)),
        (OOM, PodFailure("p", "engine", "OOMKilled", "", 137, 1)),
        (RUNNING, None),
        (CREATING, None),
        (DONE, None),
    ],
)
def test_container_states(status: dict[str, Any], expected: PodFailure | None) -> None:
    assert failures([_pod("p", status)]) == ([expected] if expected else [])


def test_init_containers_first_pods_by_name() -> None:
    found = failures([_pod("b", CRASH), _pod("a", RUNNING, init=(LOADER_FAILED,))])
    assert [(f.pod, f.container) for f in found] == [("a", "pull"), ("b", "engine")]


def test_lines_name_pod_container_reason_logs_and_what_to_do() -> None:
    failure = PodFailure("p", "engine", "CrashLoopBackOff", "back-off", 2, 3, logs=("usage: ...", "error: unknown --x"))
    text = "\n".join(failure.lines())
    assert text.startswith("pod p, container engine: CrashLoopBackOff, exit code 2, 3 restarts: back-off")
    assert "last 2 log lines:\n    usage: ...\n    error: unknown --x" in text
    assert f"what to do: {HINTS['CrashLoopBackOff']}" in text
