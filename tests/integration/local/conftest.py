"""Fixtures of local mode's integration tests: real engine processes on loopback."""

from __future__ import annotations

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


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"
