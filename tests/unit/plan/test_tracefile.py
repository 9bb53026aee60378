"""Trace files: good CSV and JSONL load; every kind of bad line is named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.plan.errors import TraceError
from kubellm.plan.tracefile import TraceRequest, load_trace


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_and_jsonl_load_with_optional_group(tmp_path: Path) -> None:
    csv = write(tmp_path, "t.csv", "at,prompt_tokens,output_tokens,group\n0,10,5,sys-a\n1.5,20,1,\n")
    jsonl = write(tmp_path, "t.jsonl", '{"at": 0, "prompt_tokens": 10, "output_tokens": 5, "group": "sys-a"}\n\n'
                                       '{"at": 1.5, "prompt_tokens": 20, "output_tokens": 1}\n')
    expected = [TraceRequest(0.0, 10, 5, "sys-a"), TraceRequest(1.5, 20, 1, None)]
    assert load_trace(csv) == expected
    assert load_trace(jsonl) == expected


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.csv", "at,prompt_tokens,output_tokens\n0,1,1\n5,1,1\n4,1,1\n", "a.csv:4: arrival time 4 is before"),
    ("b.csv", "at,prompt_tokens,output_tokens\n0,-3,1\n", "b.csv:2: 'at' and 'prompt_tokens' must be >= 0"),
    ("c.csv", "at,prompt_tokens\n0,1\n", "c.csv:1: header lacks column(s) output_tokens"),
    ("d.jsonl", '{"at": 0, "prompt_tokens": 1, "output_tokens": 2}\n{"at": 1, "prompt_tokens": 1}\n',
     "d.jsonl:2: missing column(s) output_tokens"),
    ("e.jsonl", '{"at": 0, "prompt_tokens": 1.5, "output_tokens": 2}\n', "e.jsonl:1: prompt_tokens 1.5 is not a whole"),
    ("f.jsonl", '{"at": "soon", "prompt_tokens": 1, "output_tokens": 2}\n', "f.jsonl:1: at 'soon' is not a number"),
    ("g.jsonl", '{"at": 0, "prompt_tokens": 1, "output_tokens": 0}\n', "g.jsonl:1: 'output_tokens' must be >= 1"),
    ("h.jsonl", '{"at": 0,\n', "h.jsonl:1: not JSON"),
    ("i.jsonl", "[1, 2]\n", "i.jsonl:1: expected a JSON object"),
    ("j.csv", "at,prompt_tokens,output_tokens\n", "the trace has no requests"),
])
def test_bad_lines_are_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_trace(write(tmp_path, name, text))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace(tmp_path / "nope.csv")
