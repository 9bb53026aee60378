"""The live view of ``kubellm up``: one table of replicas, redrawn by rich.

``replica_table`` is pure (state in, table out); the runner owns the ``rich.live.Live``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from kubellm.autoscale import Decision
from kubellm.local.supervisor import Replica

_STYLES = {"starting": "yellow", "ready": "green", "draining": "cyan", "failed": "red"}


def _figure(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.0f}%" if percent else f"{value:g}"


def replica_table(name: str, base_url: str, replicas: list[Replica], outstanding: Mapping[str, int],
                  decision: Decision | None) -> Table:
    """in-flight: requests the gateway has open to the replica; running/queue/KV: the engine's."""
    caption = decision.reason if decision else "autoscaler: waiting for the first tick"
    table = Table(title=f"{name}  {base_url}", caption=caption, expand=False)
    for column in ("replica", "url", "state", "in-flight", "running", "queue", "KV use", "pid"):
        table.add_column(column)
    for r in replicas:
        m = r.metrics
        table.add_row(
            str(r.index), r.url, f"[{_STYLES[r.state]}]{r.state}[/]", str(outstanding.get(r.url, 0)),
            _figure(m.running if m else None), _figure(m.waiting if m else None),
            _figure(m.kv_usage if m else None, percent=True), str(r.process.pid or "-"),
        )
    return table
