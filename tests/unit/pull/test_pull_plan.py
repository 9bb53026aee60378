"""Planning (pure): selection by patterns, range splitting, what is left after a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubellm.pull.errors import NotFoundError, UnsafeContentError
from kubellm.pull.plan import matches, pending_ranges, remaining_bytes, select_files, split_ranges
from kubellm.pull.source import RemoteFile

FILES = [RemoteFile(n, 1) for n in ("model.safetensors", "config.json", "original/consolidated.pth", "README.md")]


@pytest.mark.parametrize(
    ("allow", "ignore", "expected"),
    [
        ((), (), ["README.md", "config.json", "model.safetensors", "original/consolidated.pth"]),
        (("*.safetensors", "*.json"), (), ["config.json", "model.safetensors"]),
        ((), ("original/*", "*.md"), ["config.json", "model.safetensors"]),
        (("*.json",), ("config.json",), None),
    ],
)
def test_select_files(allow: tuple[str, ...], ignore: tuple[str, ...], expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(NotFoundError, match="none left after allow/ignore"):
            select_files(FILES, allow, ignore)
    else:
        assert [f.path for f in select_files(FILES, allow, ignore)] == expected


def test_patterns_without_slash_match_the_file_name_anywhere() -> None:
    assert matches("a/b/c.bin", ["*.bin"]) and not matches("a/b/c.bin", ["a/*.json"])


def test_duplicate_and_unsafe_names_are_refused() -> None:
    with pytest.raises(UnsafeContentError, match="twice"):
        select_files([RemoteFile("a", 1), RemoteFile("a", 2)], (), ())
    with pytest.raises(UnsafeContentError):
        select_files([RemoteFile("../a", 1)], (), ())


@given(size=st.integers(0, 10_000), range_size=st.integers(1, 3000))
def test_ranges_tile_the_file(size: int, range_size: int) -> None:
    ranges = split_ranges(size, range_size)
    assert sum(e - s for s, e in ranges) == size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(0 < e - s <= range_size for s, e in ranges)


@given(size=st.integers(0, 10_000), range_size=st.integers(1, 3000), data=st.data())
def test_remaining_is_what_is_not_done(size: int, range_size: int, data: st.DataObject) -> None:
    n = len(split_ranges(size, range_size))
    done = data.draw(st.sets(st.integers(0, max(n - 1, 0)))) if n else set()
    assert set(pending_ranges(size, range_size, done)) == set(range(n)) - done
    assert remaining_bytes(size, range_size, done) == size - sum(e - s for i, (s, e) in enumerate(split_ranges(size, range_size)) if i in done)
