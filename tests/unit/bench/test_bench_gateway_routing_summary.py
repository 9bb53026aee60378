"""bench/gateway_routing.py --summarize: the tables of a matrix spread over several
invocations (median and range over runs) and the count of issue 18's bars met."""

from __future__ import annotations

import json

from tests.scripts import load_script

gr = load_script("bench/gateway_routing.py")


def _row(router: str, shape: str, run: int, load: str, p90: float, hit: float = 0.9) -> object:
    return gr.Row(router=router, shape=shape, run=run, load=load, rate=1.0, ttft_p50_ms=p90 / 2, ttft_p90_ms=p90,
                  ttft_p99_ms=p90 * 2, e2e_p50_ms=1.0, e2e_p90_ms=1.0, req_s=1.0, tok_s=1.0, prefix_hit=hit, errors=0)


def test_summary_gives_median_and_range_and_counts_the_bars(tmp_path):
    rows = [_row("kubellm:default", "distinct", 0, "80%", 40), _row("kubellm:default", "distinct", 1, "80%", 60),
            _row("kubellm:default", "distinct", 2, "80%", 45),
            _row("round-robin", "distinct", 0, "80%", 50), _row("round-robin", "distinct", 1, "80%", 50),
            _row("round-robin", "distinct", 2, "80%", 50),
            _row("floor", "distinct", 0, "80%", 38)]
    paths = []
    for i, part in enumerate((rows[:3], rows[3:])):  # two invocations' --json
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps({"rows": [r.__dict__ for r in part]}))
    loaded = gr.load_rows(paths)
    assert loaded == rows
    text = gr.summary(loaded, "kubellm:default")
    assert "| kubellm:default | 45 (40–60) / 90 (90–90) |" in text  # the candidate first
    assert "| round-robin | 50 (50–50) / 90 (90–90) |" in text
    # run 0: 0.80x round robin's (met), and 0.8 x 50 = 40 is above the floor's 38; runs 1, 2: 1.2x, 0.9x
    assert "0.8x the best other router: 1 of 3 (shape, load, run) cells; 0.8x is below the floor in 0." in text
    assert "Distinct, at most round robin's: 2 of 3." in text
