"""SIGTERM (pod shutdown) during `kubellm pull`: the CLI stops promptly, exits non-zero, leaves
no DEST, and has recorded the durable ranges so the next run resumes. The model is served by
hf_standin.py, a STAND-IN for the Hugging Face Hub, throttled so the pull is still running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pull_testkit import HfStandin, safetensors_bytes, start_hf_standin, stop

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.pull import staging_dir
from kubellm.pull.state import STATE_NAME, PullState

KUBELLM = str(Path(sys.executable).parent / "kubellm")


@pytest.fixture(scope="module")
def slow_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HfStandin]:
    proc, hub = start_hf_standin(tmp_path_factory.mktemp("termhub"), throttle=1024 * 1024)
    yield hub
    stop(proc)


def test_sigterm_stops_records_progress_and_resumes(slow_hub: HfStandin, tmp_path: Path) -> None:
    data = safetensors_bytes(1_000_000)  # 4 MB at 1 MB/s per stream, 2 streams: ~2 s
    slow_hub.add_repo("org/term", {"m.safetensors": data})
    dest = tmp_path / "m"
    env = {**os.environ, "HF_ENDPOINT": slow_hub.url}
    cmd = [KUBELLM, "pull", "hf://org/term", str(dest), "--streams", "2", "--range-mib", "1", "--progress", "json", "--progress-interval", "0.05"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("{") and json.loads(line).get("bytes", 0) >= 2 * 1024 * 1024:
            break
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    assert code == 128 + signal.SIGTERM and time.monotonic() - sent < 10
    assert not dest.exists()
    state = PullState.model_validate_json((staging_dir(dest) / STATE_NAME).read_bytes())
    recorded = len(state.files["m.safetensors"].done)
    assert recorded >= 1, "the ranges that landed before SIGTERM were not recorded"
    slow_hub.bytes_served(reset=True)
    options = PullOptions(transfer=TransferOptions(streams=2, range_size=1024 * 1024))
    pull("hf://org/term", dest, options, SourceSettings(hf_endpoint=slow_hub.url))
    assert slow_hub.bytes_served() <= len(data) - recorded * 1024 * 1024
    assert (dest / "m.safetensors").read_bytes() == data
