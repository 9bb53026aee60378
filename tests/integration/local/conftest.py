"""Fixtures of local mode's integration tests: real engine processes on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kubellm.local.engines import EngineLaunch, sim_launch
from kubellm.spec import LLMService, load_spec_text

SIM_SPEC = """
apiVersion: kubellm.dev/v1alpha1
kind: LLMService
metadata: {name: local-it}
spec:
  model: {uri: "sim://tiny-chat"}
  engine:
    kind: sim
    sim: {profile: tiny, fixedTtftMs: 20, fixedTpotMs: 20}
  scaling: {minReplicas: 1, maxReplicas: 3, signal: runningRequests, target: 2,
            stabilization: {scaleUpSeconds: 0, scaleDownSeconds: 2}}
"""


@pytest.fixture
def sim_service() -> LLMService:
    return load_spec_text(SIM_SPEC)


@pytest.fixture
def sim_launcher(sim_service: LLMService) -> Callable[[int], EngineLaunch]:
    return lambda port: sim_launch(sim_service, "127.0.0.1", port)


def alive(pid: int) -> bool:
    """Whether *pid* is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def children_of(pid: int = os.getpid()) -> set[int]:
    """Live direct children of *pid*, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found
