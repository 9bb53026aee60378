"""Pure planning: which files to pull, split into which ranges, and what is left to do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from kubellm.pull.errors import NotFoundError, UnsafeContentError
from kubellm.pull.safety import check_relative_path
from kubellm.pull.source import RemoteFile


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Glob match against the full path or, for patterns without '/', the file name."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatchcase(path, p) or ("/" not in p and fnmatchcase(name, p)) for p in patterns)


def select_files(
    files: Sequence[RemoteFile], allow: Sequence[str], ignore: Sequence[str]
) -> list[RemoteFile]:
    """Apply allow/ignore patterns and check every name; raise when nothing is left."""
    chosen = [f for f in files if (not allow or matches(f.path, allow)) and not matches(f.path, ignore)]
    seen: set[str] = set()
    for file in chosen:
        clean = check_relative_path(file.path)
        if clean in seen:
            raise UnsafeContentError(f"the source lists {clean!r} twice", "fix the source")
        seen.add(clean)
    if not chosen:
        raise NotFoundError(
            f"no files to pull ({len(files)} listed, none left after allow/ignore patterns)",
            "check the URI's path and the --allow/--ignore patterns",
        )
    return sorted(chosen, key=lambda f: f.path)


def split_ranges(size: int, range_size: int) -> list[tuple[int, int]]:
    """Half-open byte ranges covering [0, size)."""
    return [(start, min(start + range_size, size)) for start in range(0, size, range_size)]


def pending_ranges(size: int, range_size: int, done: Iterable[int]) -> list[int]:
    finished = set(done)
    return [i for i in range(len(split_ranges(size, range_size))) if i not in finished]


def remaining_bytes(size: int, range_size: int, done: Iterable[int]) -> int:
    ranges = split_ranges(size, range_size)
    return sum(ranges[i][1] - ranges[i][0] for i in pending_ranges(size, range_size, done))
