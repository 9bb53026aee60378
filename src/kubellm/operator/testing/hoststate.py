"""What a real node leaves on the host, found and removed: container processes (by the node's
cgroup and by the containerd socket their shims name), mounts (container root filesystems,
volumes, pod network namespaces), cgroups, and the fixed host paths containerd 1.6, the kubelet
and CNI write to. Used to tear a node down even after a failed test, to refuse a start over
a killed run's leftovers, and by ``python -m kubellm.operator.testing.realnode clean``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from kubellm.operator.testing.nodeconfig import CGROUP_ROOT, FIXED_HOST_PATHS

CGROUP_FS = Path("/sys/fs/cgroup")
POD_NETNS_GLOB = "cni-*"  # containerd 1.6 names pod network namespaces /run/netns/cni-<uuid>
NETNS_DIR = Path("/run/netns")
_MNT_DETACH = 2


def _cgroup_dirs() -> list[Path]:
    """The node's cgroup in every v1 controller (and the unified tree, if any)."""
    return sorted(p for p in CGROUP_FS.glob(f"*/{CGROUP_ROOT}") if p.is_dir()) + (
        [CGROUP_FS / CGROUP_ROOT] if (CGROUP_FS / CGROUP_ROOT / "cgroup.procs").exists() else []
    )


def create_cgroups() -> None:
    """The node's cgroup in every v1 controller (the kubelet wants its ``cgroupRoot`` to exist);
    a new cpuset cgroup has no CPUs or memory nodes until given its parent's."""
    for controller in sorted(p for p in CGROUP_FS.iterdir() if (p / "cgroup.procs").exists()):
        node = controller / CGROUP_ROOT
        node.mkdir(exist_ok=True)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            if (controller / setting).exists():
                (node / setting).write_text((controller / setting).read_text())


def cgroup_pids() -> set[int]:
    """Every process in a pod cgroup of the node."""
    pids: set[int] = set()
    for root in _cgroup_dirs():
        # os.walk, not Path.rglob: a pod's cgroup removed while we walk is skipped (rglob
        # raised FileNotFoundError from its scandir once, failing a teardown).
        for directory, _, files in os.walk(root):
            if "cgroup.procs" not in files:
                continue
            try:
                pids.update(int(line) for line in (Path(directory) / "cgroup.procs").read_text().split())
            except OSError:
                continue  # the cgroup went away while we walked
    return pids


def pids_naming(needle: str) -> set[int]:
    """Processes whose command line contains *needle* (the shims name the containerd socket
    of the node they belong to, and nothing else does)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.add(int(entry.name))
    return found


def pids_in_netns(namespace: Path) -> set[int]:
    """Processes in the network namespace bound at *namespace* (what ran on the node, whatever
    its command line says)."""
    try:
        inode = namespace.stat().st_ino
    except OSError:
        return set()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "ns" / "net").stat().st_ino == inode:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def kill(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _unescape(field: str) -> str:
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(prefixes: Iterable[Path]) -> list[Path]:
    """Mount points at or under any of *prefixes*, deepest first (the order to unmount in)."""
    roots = [str(p) for p in prefixes]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if any(point == root or point.startswith(root.rstrip("/") + "/") for root in roots):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount(points: Iterable[Path]) -> None:
    """Lazily unmount each of *points* (a mount still busy goes once its last user does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for point in points:
        libc.umount2(str(point).encode(), _MNT_DETACH)


def pod_netns_files() -> list[Path]:
    return sorted(NETNS_DIR.glob(POD_NETNS_GLOB))


def remove_cgroups(timeout: float = 10.0) -> list[Path]:
    """rmdir the node's cgroups bottom-up; a cgroup empties a moment after its last process
    is killed, so retry until *timeout*. Returns those that could not be removed."""
    deadline = time.monotonic() + timeout
    while True:
        stuck = []
        for root in _cgroup_dirs():
            for directory in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True) + [root]:
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    stuck.append(directory)
        if not stuck or time.monotonic() > deadline:
            return stuck
        time.sleep(0.2)


def remove_paths(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.exists():
            shutil.rmtree(path, ignore_errors=True)


def leftovers() -> list[str]:
    """What a killed run left behind that would be in a new node's way."""
    found = [str(p) for p in FIXED_HOST_PATHS if p.exists()]
    found += [str(p) for p in pod_netns_files()]
    found += [f"cgroup {p}" for p in _cgroup_dirs()]
    return found


def clean(extra_mount_roots: Iterable[Path] = (), socket: Path | None = None) -> list[Path]:
    """Remove every trace of a node: kill its container processes and shims, unmount, remove
    cgroups and fixed paths. Returns the cgroups that would not go (the caller reports them)."""
    kill(cgroup_pids())
    if socket is not None:
        kill(pids_naming(str(socket)))
    roots = [*extra_mount_roots, *FIXED_HOST_PATHS, *pod_netns_files()]
    unmount(mounts_under(roots))
    remove_paths(pod_netns_files())
    stuck = remove_cgroups()
    remove_paths(FIXED_HOST_PATHS)
    return stuck
