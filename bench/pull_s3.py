"""Benchmark: `kubellm pull` vs `aws s3 cp --recursive` vs a plain single-stream boto3 download.

A synthetic multi-file model (valid safetensors shards of random bytes, >= 4 GB in all) is put
in a local MinIO server (built by `scripts/setup/pull.sh` into .tools/bin) with the AWS CLI's
defaults, as users upload (`aws s3 cp`: multipart above 8 MB, a composite checksum), then each
tool downloads it as a separate process: wall time, throughput, peak RSS (ru_maxrss of that
process) and CPU seconds, its own and MinIO's. kubellm also hashes every file (sha256) and
fdatasyncs each range, and checks the store's checksums (the untimed warm-up download is
kubellm's, and the bench prints which checksum its manifest says it compared); the baselines
verify nothing.

Fairness: the tools run in --rounds rounds, the order rotated each round, after one untimed
warm-up download, and each tool's median round is reported. The first download after the
upload pays for the writeback and page-cache reclaim the upload left behind (it measured
2.5x slower than the same download a minute later), so a fixed order with no warm-up
favoured whichever tool ran last; it was kubellm.

    .venv/bin/python bench/pull_s3.py [--gib 4] [--shards 4] [--streams 16] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "benchadmin", "benchadmin-secret"
BUCKET = "bench"
GiB = 1024**3

SINGLE_STREAM = """
import sys, boto3
endpoint, bucket, prefix, dest = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for obj in page.get("Contents", []):
        path = f"{dest}/{obj['Key'][len(prefix) + 1:]}"
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
        with open(path, "wb") as out:
            while block := body.read(1 << 20):
                out.write(block)
"""

MEASURE = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - t, "rc": code, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_minio(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = REPO / ".tools/bin/minio"
    if not exe.exists():
        sys.exit("MinIO is not built: run scripts/setup/pull.sh --bench")
    port, console = free_port(), free_port()
    env = {**os.environ, "MINIO_ROOT_USER": USER, "MINIO_ROOT_PASSWORD": PASSWORD, "MINIO_BROWSER": "off"}
    cmd = [str(exe), "server", str(data), "--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{console}", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/minio/health/live", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("MinIO did not start")


def write_shard(path: Path, nbytes: int) -> None:
    """A valid safetensors file: one U8 tensor of random bytes."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    with path.open("wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        left = nbytes
        while left:
            block = os.urandom(min(64 * 1024 * 1024, left))
            out.write(block)
            left -= len(block)


def upload_model(url: str, staging: Path, gib: float, shards: int, env: dict[str, str]) -> int:
    """Shards go up with `aws s3 cp` and its defaults (what users do), small files with PutObject."""
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=USER, aws_secret_access_key=PASSWORD, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    total = 0
    for i in range(shards):
        path = staging / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_shard(path, int(gib * GiB / shards))
        subprocess.run([str(REPO / ".tools/awscli/bin/aws"), "s3", "cp", "--only-show-errors", str(path), f"s3://{BUCKET}/model/{path.name}"],
                       env=env, check=True)  # fmt: skip
        total += path.stat().st_size
        path.unlink()
    for name, body in (("config.json", b'{"model_type": "llama"}'), ("tokenizer.json", b"{}" * 1000)):
        s3.put_object(Bucket=BUCKET, Key=f"model/{name}", Body=body)
        total += len(body)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], env: dict[str, str], server: int | None = None) -> dict[str, float]:
    """Wall time, peak RSS and CPU seconds of *cmd*, and the CPU seconds the *server* process
    spent meanwhile (on two shared cores the two compete: CPU per GB tells who costs what)."""
    before = cpu_seconds(server) if server else 0.0
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        sys.exit(f"{cmd[0]} failed (rc {result['rc']})")
    if server:
        result["server_cpu_s"] = cpu_seconds(server) - before
    return result


def fsync_tree(path: Path) -> float:
    """Seconds to make a tool's output durable (kubellm already fsynced its files: ~0)."""
    started = time.perf_counter()
    for file in path.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    return time.perf_counter() - started


def durable_write_ceiling(directory: Path, nbytes: int = GiB) -> float:
    """MB/s of writing *nbytes* to *directory* and fdatasyncing them: what no tool that makes
    its output durable can beat on this disk (one process, 1 MiB writes, like dd conv=fdatasync)."""
    block, path = os.urandom(1 << 20), directory / "ceiling.bin"
    started = time.perf_counter()
    with path.open("wb", buffering=0) as out:
        for _ in range(nbytes >> 20):
            out.write(block)
        os.fdatasync(out.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return nbytes / seconds / 1e6


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.name.startswith(".kubellm"))


def run_tool(cmd: list[str], dest: Path, env: dict[str, str], server: int, total: int) -> dict[str, float]:
    """One timed download of *cmd* into *dest*, checked for size, fsynced afterwards (timed
    apart), then removed."""
    dest.mkdir()  # the boto3 script expects it; the other tools accept an empty directory
    result = measure(cmd, env, server)
    result["fsync_after_s"] = fsync_tree(dest)
    got = dir_bytes(dest)
    if got != total:
        sys.exit(f"{cmd[0]} wrote {got} bytes to {dest}, expected {total}")
    shutil.rmtree(dest)
    return result


def warm_up(run: tuple[list[str], Path], env: dict[str, str], server: int, total: int) -> None:
    """An untimed kubellm download: it warms the caches and shows, from its manifest, which
    store checksum each file was checked against."""
    cmd, dest = run
    dest.mkdir()
    measure(cmd, env, server)
    if dir_bytes(dest) != total:
        sys.exit(f"the warm-up wrote {dir_bytes(dest)} bytes, expected {total}")
    manifest = json.loads((dest / ".kubellm-manifest.json").read_text())
    print("warm-up (kubellm, untimed): store checksums compared, per file:")
    for entry in manifest["files"]:
        check = entry.get("verification") or {}
        print(f"  {entry['path']:<36} {check.get('store_checksum', '?'):<10} {check.get('detail', '')}")
    shutil.rmtree(dest)


def median_round(done: list[dict[str, float]]) -> dict[str, float]:
    """The round of median wall time (a real round, so its figures belong together)."""
    return sorted(done, key=lambda r: r["seconds"])[len(done) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="timed downloads per tool, order rotated each round")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--dest-dir", type=Path, default=None,
                        help="where the tools write (default: the workdir); /dev/shm takes the disk out of the race")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    aws = REPO / ".tools/awscli/bin/aws"
    if not aws.exists():
        sys.exit("awscli is not installed: run scripts/setup/pull.sh")
    work = Path(tempfile.mkdtemp(prefix="pull-bench-", dir=args.workdir))
    out = Path(tempfile.mkdtemp(prefix="pull-bench-dest-", dir=args.dest_dir)) if args.dest_dir else work
    minio, url = start_minio(work / "minio")
    try:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": USER, "AWS_SECRET_ACCESS_KEY": PASSWORD, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": url, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}  # fmt: skip
        total = upload_model(url, work, args.gib, args.shards, env)
        subprocess.run(["sh", "-c", f"find {work / 'minio'} -type f -exec cat {{}} + > /dev/null"], check=True)
        boto3_dest, aws_dest, kubellm_dest = out / "d-boto3", out / "d-aws", out / "d-kubellm"
        runs = {
            "boto3 single stream": ([sys.executable, "-c", SINGLE_STREAM, url, BUCKET, "model", str(boto3_dest)], boto3_dest),
            "aws s3 cp --recursive": ([str(aws), "s3", "cp", "--recursive", "--only-show-errors", f"s3://{BUCKET}/model", str(aws_dest)], aws_dest),
            "kubellm pull": ([str(REPO / ".venv/bin/kubellm"), "pull", f"s3://{BUCKET}/model", str(kubellm_dest),
                              "--streams", str(args.streams), "--progress", "none"], kubellm_dest),  # fmt: skip
        }
        subprocess.run(["sync"], check=True)
        warm_up(runs["kubellm pull"], env, minio.pid, total)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        names = list(runs)
        for turn in range(args.rounds):
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                rounds[name].append(run_tool(*runs[name], env, minio.pid, total))
        results = {name: median_round(done) for name, done in rounds.items()}
        print("\nrounds (seconds, in the order run):")
        for name, done in rounds.items():
            print(f"  {name:<24}" + "  ".join(f"{r['seconds']:.1f}" for r in done))
        startup = measure([str(REPO / ".venv/bin/kubellm"), "pull", "--help"], env)["seconds"]
        ceiling = durable_write_ceiling(out)
        report(results, total, args)
        print(f"kubellm CLI start-up alone (kubellm pull --help): {startup:.1f} s of the kubellm time")
        print(f"durable write ceiling of {out} (1 GiB written + fdatasync, no network): {ceiling:.0f} MB/s")
    finally:
        minio.terminate()
        minio.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def report(results: dict[str, dict[str, float]], total: int, args: argparse.Namespace) -> None:
    baseline = min(r["seconds"] for n, r in results.items() if n != "kubellm pull")
    durable = min(r["seconds"] + r["fsync_after_s"] for n, r in results.items() if n != "kubellm pull")
    print(f"\nmodel: {total / 1e9:.2f} GB in {args.shards} safetensors shards + 2 small files; MinIO on loopback; {os.cpu_count()} CPUs")
    print(f"median of {args.rounds} rounds per tool, order rotated, after an untimed warm-up download")
    print("'on disk' adds the time to fsync the tool's files afterwards (kubellm fsyncs before it exits)")
    print("CPU s/GB: CPU seconds per GB moved, of the tool itself and of MinIO during its run")
    print(f"{'tool':<24}{'seconds':>9}{'MB/s':>7}{'vs best':>9}{'on disk s':>11}{'vs best':>9}{'peak RSS MB':>13}"
          f"{'tool CPU s/GB':>15}{'MinIO CPU s/GB':>16}")
    gb = total / 1e9
    for name, r in results.items():
        on_disk = r["seconds"] + r["fsync_after_s"]
        print(f"{name:<24}{r['seconds']:>9.1f}{total / r['seconds'] / 1e6:>7.0f}{baseline / r['seconds']:>8.2f}x"
              f"{on_disk:>11.1f}{durable / on_disk:>8.2f}x{r['peak_rss_mb']:>13.0f}"
              f"{r['cpu_s'] / gb:>15.2f}{r.get('server_cpu_s', 0.0) / gb:>16.2f}")
    print(json.dumps({"total_bytes": total, "results": results, "kubellm_speedup_vs_fastest_baseline": baseline / results["kubellm pull"]["seconds"]}))


if __name__ == "__main__":
    main()
