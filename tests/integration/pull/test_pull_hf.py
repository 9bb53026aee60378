"""hf:// pulls through huggingface_hub against hf_standin.py, a STAND-IN for the Hugging Face Hub
(the real Hub cannot be reached from here): metadata, LFS digests, gating, revisions, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pull_testkit import HfStandin, safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import CredentialsError, IntegrityError, NotFoundError, SafetensorsError, UnsafeContentError
from kubellm.pull.manifest import MANIFEST_NAME, sha256_file
from kubellm.pull.pull import staging_dir

FAST = TransferOptions(streams=4, range_size=256 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=5)


def settings(hub: HfStandin, token: str | None = None) -> SourceSettings:
    return SourceSettings(hf_endpoint=hub.url, hf_token=token)


def test_pulls_a_repo_at_its_commit_with_lfs_digests_checked(hf_hub: HfStandin, tmp_path: Path) -> None:
    weights = safetensors_bytes(300_000)
    sha = hf_hub.add_repo("org/tiny", {"model.safetensors": weights, "config.json": b"{}", "sub/tok.json": b"[1]"})
    result = pull("hf://org/tiny@main", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert result.revision == sha and result.files == 3
    assert (tmp_path / "m/model.safetensors").read_bytes() == weights
    manifest = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    assert {f["path"] for f in manifest["files"]} == {"model.safetensors", "config.json", "sub/tok.json"}
    assert manifest["revision"] == sha
    assert not staging_dir(tmp_path / "m").exists()


def test_allow_and_ignore_patterns_select_files(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/pat", {"a.safetensors": safetensors_bytes(10), "README.md": b"x", "extra/b.json": b"{}"})
    options = PullOptions(allow_patterns=("*.safetensors", "*.json"), ignore_patterns=("extra/*",), transfer=FAST)
    result = pull("hf://org/pat", tmp_path / "m", options, settings(hf_hub))
    assert result.files == 1 and (tmp_path / "m/a.safetensors").exists() and not (tmp_path / "m/README.md").exists()


def test_rerun_on_complete_cache_verifies_and_fetches_nothing(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/again", {"m.safetensors": safetensors_bytes(50_000)})
    pull("hf://org/again", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    hf_hub.bytes_served(reset=True)
    second = pull("hf://org/again", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert second.status == "verified" and second.bytes_received == 0 and hf_hub.bytes_served() == 0
    (tmp_path / "m/m.safetensors").write_bytes(b"corrupted")
    with pytest.raises(IntegrityError, match="m.safetensors"):
        pull("hf://org/again", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))


def test_gated_repo_without_token_says_how_to_add_the_secret(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/gated", {"m.safetensors": safetensors_bytes(10)}, gated=True, token="hf_good")
    with pytest.raises(CredentialsError) as info:
        pull("hf://org/gated", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    message = str(info.value)
    assert "gated" in message and "HF_TOKEN" in message and "kubectl create secret" in message
    assert "spec.model.credentials" in message
    ok = pull("hf://org/gated", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub, token="hf_good"))
    assert ok.files == 1


def pull_cli(hub: HfStandin, repo: str, dest: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`kubellm pull` as the loader Job runs it: settings only from this environment."""
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(dest.parent), "HF_ENDPOINT": hub.url, **env}
    argv = [sys.executable, "-m", "kubellm.cli.main", "pull", f"hf://{repo}", str(dest), "--progress", "none"]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("layout", ["KUBELLM_CREDENTIALS_DIR", "HF_TOKEN_PATH"])
def test_gated_repo_with_the_token_only_in_a_mounted_file(hf_hub: HfStandin, tmp_path: Path, layout: str) -> None:
    hf_hub.add_repo("org/gated-file", {"m.safetensors": safetensors_bytes(10)}, gated=True, token="hf_from_file")
    creds = tmp_path / "creds"  # the Secret as the kubelet mounts it: one file per key
    creds.mkdir()
    (creds / "HF_TOKEN").write_text("hf_from_file\n")
    env = {"KUBELLM_CREDENTIALS_DIR": str(creds)} if layout == "KUBELLM_CREDENTIALS_DIR" else {"HF_TOKEN_PATH": str(creds / "HF_TOKEN")}
    ok = pull_cli(hf_hub, "org/gated-file", tmp_path / "m", **env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["files"] == 1
    assert "hf_from_file" not in ok.stdout + ok.stderr
    # Without the file the same command fails, saying the repo is gated and how to add the Secret.
    (creds / "HF_TOKEN").unlink()
    refused = pull_cli(hf_hub, "org/gated-file", tmp_path / "n", **env)
    assert refused.returncode == 1 and not (tmp_path / "n").exists()
    assert "CredentialsError" in refused.stderr and "gated" in refused.stderr and "HF_TOKEN" in refused.stderr
    # A wrong token is refused too, and never echoed.
    (creds / "HF_TOKEN").write_text("hf_WRONG\n")
    wrong = pull_cli(hf_hub, "org/gated-file", tmp_path / "n", **env)
    assert wrong.returncode == 1 and "check that the token has access" in wrong.stderr
    assert "hf_WRONG" not in wrong.stdout + wrong.stderr


def test_missing_repo_and_wrong_revision_are_named(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/rev", {"a.json": b"{}"})
    with pytest.raises(NotFoundError, match=r"no revision 'v9'.*branch, tag or commit"):
        pull("hf://org/rev@v9", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    with pytest.raises(CredentialsError, match="not found or is private"):
        pull("hf://org/does-not-exist", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    with pytest.raises(NotFoundError, match="not found or is private"):
        pull("hf://org/does-not-exist", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub, token="t"))
    assert not (tmp_path / "m").exists()


def test_tampered_bytes_are_refused_and_never_committed(hf_hub: HfStandin, tmp_path: Path) -> None:
    data = safetensors_bytes(20_000)
    hf_hub.add_repo("org/tamper", {"m.safetensors": data}, lfs_sha256={"m.safetensors": "0" * 64})
    with pytest.raises(IntegrityError, match="does not match the source's"):
        pull("hf://org/tamper", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert not (tmp_path / "m").exists()
    assert not (staging_dir(tmp_path / "m") / "m.safetensors").exists()  # discarded, fetched anew next time


def test_truncated_safetensors_is_refused(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/trunc", {"m.safetensors": safetensors_bytes(20_000)[:-100]})
    with pytest.raises(SafetensorsError, match="m.safetensors.*truncated"):
        pull("hf://org/trunc", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert not (tmp_path / "m").exists()


def test_pickle_weights_are_refused_unless_allowed(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/pickle", {"pytorch_model.bin": b"\x80\x04K\x01.", "config.json": b"{}"})
    with pytest.raises(UnsafeContentError, match=r"pytorch_model.bin.*--allow-pickle"):
        pull("hf://org/pickle", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert not staging_dir(tmp_path / "m").exists()  # refused before anything was written
    allowed = pull("hf://org/pickle", tmp_path / "m", PullOptions(allow_pickle=True, transfer=FAST), settings(hf_hub))
    assert allowed.files == 2
    ignored = pull("hf://org/pickle", tmp_path / "n", PullOptions(ignore_patterns=("*.bin",), transfer=FAST), settings(hf_hub))
    assert ignored.files == 1


def test_path_traversal_name_is_refused(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/evil", {"a.json": b"{}"}, extra_siblings=[{"rfilename": "../../etc/cron.d/x", "size": 4}])
    with pytest.raises(UnsafeContentError, match="escapes the destination"):
        pull("hf://org/evil", tmp_path / "sub" / "m", PullOptions(transfer=FAST), settings(hf_hub))
    assert not (tmp_path / "etc").exists() and not (tmp_path / "sub").exists()


def test_manifest_digests_match_the_files(hf_hub: HfStandin, tmp_path: Path) -> None:
    hf_hub.add_repo("org/digests", {"a.safetensors": safetensors_bytes(70_000), "b.txt": b"hello"})
    pull("hf://org/digests", tmp_path / "m", PullOptions(transfer=FAST), settings(hf_hub))
    manifest = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        path = tmp_path / "m" / entry["path"]
        assert path.stat().st_size == entry["size"] and sha256_file(path) == entry["sha256"]
