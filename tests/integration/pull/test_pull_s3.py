"""s3:// pulls against moto's standalone S3 server (a real S3 API on loopback)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from pull_testkit import safetensors_bytes

from kubellm.pull import PullOptions, SourceSettings, TransferOptions, pull
from kubellm.pull.errors import CredentialsError, NotFoundError
from kubellm.pull.manifest import read_manifest

FAST = TransferOptions(streams=4, range_size=256 * 1024, retries=1, backoff_initial_s=0.01, stall_timeout_s=10)


@pytest.fixture
def bucket(aws_env: str) -> str:
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    name = f"models-{abs(hash(aws_env)) % 10**6}"
    if name not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=name)
    return name


def test_pulls_a_prefix_with_ranges_and_checksums(aws_env: str, bucket: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    weights = safetensors_bytes(400_000)
    s3.put_object(Bucket=bucket, Key="llm/v1/model.safetensors", Body=weights, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key="llm/v1/config.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="llm/v10/other.json", Body=b"not me")  # shares the string prefix
    result = pull(f"s3://{bucket}/llm/v1", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings(s3_endpoint_url=aws_env))
    assert result.files == 2 and result.bytes_received == len(weights) + 2
    assert (tmp_path / "m/model.safetensors").read_bytes() == weights
    manifest = read_manifest(tmp_path / "m")
    assert manifest is not None and sorted(e.path for e in manifest.files) == ["config.json", "model.safetensors"]


def test_single_object_uri(aws_env: str, bucket: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="gguf/tiny.gguf", Body=b"GGUF" + bytes(1000))
    result = pull(f"s3://{bucket}/gguf/tiny.gguf", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings(s3_endpoint_url=aws_env))
    assert result.files == 1 and (tmp_path / "m/tiny.gguf").stat().st_size == 1004


def test_missing_bucket_and_prefix_are_named(aws_env: str, bucket: str, tmp_path: Path) -> None:
    settings = SourceSettings(s3_endpoint_url=aws_env)
    with pytest.raises(NotFoundError, match="NoSuchBucket.*check the bucket"):
        pull("s3://no-such-bucket/x", tmp_path / "m", PullOptions(transfer=FAST), settings)
    with pytest.raises(NotFoundError, match="no objects under this prefix"):
        pull(f"s3://{bucket}/nothing/here", tmp_path / "m", PullOptions(transfer=FAST), settings)


def test_no_credentials_says_which_variables_to_set(aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="no AWS credentials.*AWS_ACCESS_KEY_ID.*spec.model.credentials"):
        pull("s3://any-bucket/m", tmp_path / "m", PullOptions(transfer=FAST), SourceSettings(s3_endpoint_url=aws_env))


def test_full_object_sha256_checksum_is_used_when_the_store_has_one(aws_env: str, bucket: str) -> None:
    from kubellm.pull.drivers.s3 import S3Driver

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="sum/a.bin", Body=b"abc", ChecksumAlgorithm="SHA256")
    driver = S3Driver(f"{bucket}/sum", SourceSettings(s3_endpoint_url=aws_env), FAST)
    (file,) = driver.list_files().files
    driver.close()
    assert file.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
