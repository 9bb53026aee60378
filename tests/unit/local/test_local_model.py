"""Where models live locally, and what the live view shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from kubellm.autoscale import ScalerState
from kubellm.autoscale.decide import Decision
from kubellm.local.engines import EngineLaunch
from kubellm.local.errors import ModelNotAvailableError
from kubellm.local.metrics import ReplicaMetrics
from kubellm.local.model import model_cache_path, resolve_model
from kubellm.local.process import EngineProcess
from kubellm.local.supervisor import Replica
from kubellm.local.view import replica_table
from kubellm.spec import load_spec_text

SPEC = ("apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: m}\nspec:\n"
        "  model: {uri: 'https://h.example/dir/m.gguf'}\n  engine: {kind: llamacpp}\n")


def test_cache_path_is_stable_readable_and_distinct_per_uri(tmp_path: Path) -> None:
    a = model_cache_path("https://h.example/dir/m.gguf", tmp_path)
    assert a == model_cache_path("https://h.example/dir/m.gguf", tmp_path)
    assert a.parent == tmp_path / "models" and a.name.startswith("m.gguf-")
    assert a != model_cache_path("https://other.example/dir/m.gguf", tmp_path)


def test_sim_needs_no_model_and_model_file_must_exist(tmp_path: Path) -> None:
    sim = load_spec_text(SPEC.replace("https://h.example/dir/m.gguf", "sim://x").replace("llamacpp", "sim"))
    assert resolve_model(sim, tmp_path, None) is None
    service = load_spec_text(SPEC)
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model(service, tmp_path, tmp_path / "nope.gguf")
    real = tmp_path / "m.gguf"
    real.write_bytes(b"GGUF")
    assert resolve_model(service, tmp_path, real) == real


def test_a_failed_pull_says_what_else_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = load_spec_text(SPEC.replace("https://h.example/dir/m.gguf", "pvc://claim/m.gguf"))
    monkeypatch.setenv("KUBELLM_PVC_ROOT", str(tmp_path / "nothing-here"))
    with pytest.raises(ModelNotAvailableError, match=r"cannot pull pvc://claim/m.gguf.*--model-file"):
        resolve_model(service, tmp_path, None)


def test_live_table_shows_each_replica_and_the_last_decision(tmp_path: Path) -> None:
    launch = EngineLaunch(("x",), "/health", "/metrics", 1.0)
    replicas = [Replica(0, EngineProcess(launch, "http://127.0.0.1:1", tmp_path / "l"), "ready",
                        ReplicaMetrics(waiting=2, running=3, kv_usage=0.25)),
                Replica(1, EngineProcess(launch, "http://127.0.0.1:2", tmp_path / "l"), "starting")]
    decision = Decision(2, 2, "hold 2->2: queueDepth=2 target=5 asks 1", ScalerState())
    console = Console(width=140, record=True)
    console.print(replica_table("svc", "http://127.0.0.1:9", replicas, {"http://127.0.0.1:1": 7}, decision))
    text = console.export_text()
    assert "svc  http://127.0.0.1:9" in text and "hold 2->2" in text
    rows = [line for line in text.splitlines() if "http://127.0.0.1:1 " in line or "http://127.0.0.1:2 " in line]
    assert len(rows) == 2
    assert "ready" in rows[0] and " 7 " in rows[0] and " 3 " in rows[0] and " 2 " in rows[0] and "25%" in rows[0]
    assert "starting" in rows[1] and rows[1].count(" - ") >= 3
