"""Every valid S3 object pulls, whatever uploaded it and with whichever checksum; a tampered
one is still refused (issue 19).

Two real S3 implementations on loopback, moto's server and MinIO (built from its Go module by
scripts/setup/pull.sh), each given objects uploaded the ways users upload them: one
PutObject, boto3's transfer manager (multipart), and the AWS CLI's `aws s3 cp` with its
defaults (multipart above 8 MB), with the SDK's default checksum and with each algorithm S3
offers. The manifest must say which store checksum was compared: the whole object's, or a
composite over the parts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from pull_testkit import REPO, free_port, safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import IntegrityError
from kubellm.pull.manifest import read_manifest

FAST = TransferOptions(streams=4, range_size=1024 * 1024, retries=0, backoff_initial_s=0.01, stall_timeout_s=20)
MIB = 1024 * 1024
ALGORITHMS = [None, "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
"""None: the SDK's default (CRC32 since botocore 1.36)."""


@dataclass(frozen=True)
class Store:
    name: str
    url: str
    key: str
    secret: str

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=self.key, aws_secret_access_key=self.secret
        )

    def settings(self) -> SourceSettings:
        return SourceSettings(s3_endpoint_url=self.url, aws_access_key_id=self.key, aws_secret_access_key=self.secret)


@pytest.fixture(scope="module", params=["moto", "minio"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "moto":
        url = request.getfixturevalue("s3_endpoint")
        made = Store("moto", url, "testing", "testing")
    else:
        made = Store("minio", request.getfixturevalue("minio_endpoint"), "testing", "testing-secret")
    made.client().create_bucket(Bucket="models")
    return made


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """11 MiB: above both the transfer manager's threshold set below (5 MiB parts: 3 parts)
    and the AWS CLI's default 8 MiB (2 parts)."""
    data = safetensors_bytes(11 * MIB // 4)
    path = tmp_path_factory.mktemp("upload") / "model.safetensors"
    path.write_bytes(data)
    return path, data


def _upload(store: Store, how: str, algorithm: str | None, path: Path, key: str) -> None:
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    if how == "put_object":
        store.client().put_object(Bucket="models", Key=key, Body=path.read_bytes(), **extra)
    elif how == "transfer_manager":
        config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
        store.client().upload_file(str(path), "models", key, Config=config, ExtraArgs=extra)
    else:
        flags = ["--checksum-algorithm", algorithm] if algorithm else []
        env = {**os.environ, "AWS_ACCESS_KEY_ID": store.key, "AWS_SECRET_ACCESS_KEY": store.secret,
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent"}  # fmt: skip
        aws = REPO / ".tools/awscli/bin/aws"
        subprocess.run([str(aws), "--endpoint-url", store.url, "s3", "cp", str(path), f"s3://models/{key}", *flags, "--only-show-errors"],
                       env=env, check=True, capture_output=True, timeout=120)  # fmt: skip


CASES = [("put_object", a) for a in ALGORITHMS] + [("transfer_manager", a) for a in ALGORITHMS] + [("awscli", None), ("awscli", "SHA256")]


@pytest.mark.parametrize(("how", "algorithm"), CASES)
def test_every_valid_object_pulls_and_the_manifest_says_what_was_checked(
    store: Store, model_file: tuple[Path, bytes], tmp_path: Path, how: str, algorithm: str | None
) -> None:
    path, data = model_file
    prefix = f"{how}-{algorithm or 'default'}"
    _upload(store, how, algorithm, path, f"{prefix}/model.safetensors")
    pull(f"s3://models/{prefix}", tmp_path / "m", PullOptions(transfer=FAST), store.settings())
    assert (tmp_path / "m/model.safetensors").read_bytes() == data
    manifest = read_manifest(tmp_path / "m")
    assert manifest is not None
    (entry,) = manifest.files
    check = entry.verification
    assert check is not None
    whole_sha256 = (check.algorithm, check.store_checksum) == ("sha256", "full")
    assert check.sha256 == ("matched the source's" if whole_sha256 else "computed")
    # Every upload here stored a checksum, and kubellm compared it: none is skipped.
    assert check.store_checksum in ("full", "composite"), check.detail
    assert check.algorithm == (algorithm or "CRC32").lower()
    if how == "put_object":
        assert check.store_checksum == "full"
    elif check.store_checksum == "composite":
        assert check.detail.endswith(f"of {3 if how == 'transfer_manager' else 2} parts")


@pytest.fixture
def tamperable_moto() -> Iterator[tuple[Store, Any]]:
    """moto's server run in this process, so a test can change an object's stored bytes after
    the upload (the store's checksum then no longer matches them: corruption at the source)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        store = Store("moto", f"http://127.0.0.1:{port}", "testing", "testing")
        store.client().create_bucket(Bucket="models")
        yield store, s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    finally:
        server.stop()


@pytest.mark.parametrize(("how", "algorithm"), [("put_object", "CRC32C"), ("transfer_manager", None), ("transfer_manager", "SHA256")])
def test_a_tampered_object_is_refused_and_nothing_is_committed(
    tamperable_moto: tuple[Store, Any], model_file: tuple[Path, bytes], tmp_path: Path, how: str, algorithm: str | None
) -> None:
    store, backend = tamperable_moto
    path, _ = model_file
    _upload(store, how, algorithm, path, "bad/model.safetensors")
    stored = backend.buckets["models"].keys["bad/model.safetensors"]
    with stored.lock:
        stored._value_buffer.seek(7 * MIB)  # the middle of a part, far from any range edge
        stored._value_buffer.write(b"\x00tampered\x00")
    with pytest.raises(IntegrityError, match="the bytes received give"):
        pull("s3://models/bad", tmp_path / "m", PullOptions(transfer=FAST), store.settings())
    assert not (tmp_path / "m").exists()


def test_the_issue_as_a_user_typed_it(store: Store, model_file: tuple[Path, bytes], tmp_path: Path) -> None:
    """`aws s3 cp` of a 11 MiB safetensors file (multipart), then `kubellm pull s3://...` with
    AWS_ENDPOINT_URL: it refused the file as corrupt before issue 19."""
    path, data = model_file
    _upload(store, "awscli", None, path, "user/m/model.safetensors")
    env = {**os.environ, "AWS_ENDPOINT_URL": store.url, "AWS_ACCESS_KEY_ID": store.key, "AWS_SECRET_ACCESS_KEY": store.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}  # fmt: skip
    kubellm = str(Path(sys.executable).parent / "kubellm")
    done = subprocess.run([kubellm, "pull", "s3://models/user/m/", str(tmp_path / "m"), "--progress", "json"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "pulled"
    assert (tmp_path / "m/model.safetensors").read_bytes() == data
