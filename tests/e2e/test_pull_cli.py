"""`kubellm pull` as a user types it: local source, JSON progress log, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KUBELLM = str(Path(sys.executable).parent / "kubellm")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBELLM, "pull", *args], capture_output=True, text=True, timeout=120)


def test_pull_then_rerun_verifies(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.gguf").write_bytes(os.urandom(2_000_000))
    (src / "config.json").write_text("{}")
    first = run(str(src), str(tmp_path / "m"), "--progress", "json", "--range-mib", "1")
    assert first.returncode == 0, first.stderr
    done = json.loads(first.stdout.strip().splitlines()[-1])
    assert done["status"] == "pulled" and done["files"] == 2 and done["bytes_received"] == 2_000_002
    events = [json.loads(line)["event"] for line in first.stderr.splitlines() if line.startswith("{")]
    assert events[0] == "start" and "file_done" in events and events[-1] == "progress"
    second = run(str(src), str(tmp_path / "m"))
    assert second.returncode == 0 and json.loads(second.stdout)["status"] == "verified"


def test_refusals_and_bad_input_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04.")
    refused = run(str(src), str(tmp_path / "m"), "--progress", "none")
    assert refused.returncode == 1 and "pickle" in refused.stderr and "--allow-pickle" in refused.stderr
    assert not (tmp_path / "m").exists()
    bad = run("ftp://nope/x", str(tmp_path / "m"))
    assert bad.returncode == 2 and "unsupported model URI" in bad.stderr
    allowed = run(str(src), str(tmp_path / "m"), "--allow-pickle", "--progress", "none")
    assert allowed.returncode == 0, allowed.stderr
