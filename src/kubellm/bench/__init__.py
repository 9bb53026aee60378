"""kubellm.bench: load tests that report what LLM operators care about, and a deployment check.

Layers (each points only down):

- ``workload``: seeded request generators (pure).
- ``arrivals``: seeded arrival schedules (pure).
- ``records``, ``stats``: the per-request record and its aggregation (pure).
- ``sse``: parsing of an OpenAI server-sent-event stream (pure).
- ``client``: one streamed request over aiohttp, timed into a record (I/O).
- ``driver``: open-loop (rate) and closed-loop (concurrency) runs (I/O, clock injected).
- ``search``: sweeps and the goodput-maximising rate search (logic over an injected runner).
- ``report``, ``plots``, ``compare``: JSON, Markdown and PNG output.
- ``probe``: the target answers and serves the model, checked before any load (I/O).
- ``watch``: stops a run whose requests all fail the same way (pure).
- ``check``: the deployment check (I/O) judged by ``thresholds`` (pure).
- ``cli``: typer commands only.

Errors::

    BenchError                  anything this package raises on purpose
     ├── WorkloadError          a workload option or dataset file that cannot be used
     ├── ResultFileError        a result JSON that cannot be read back
     ├── ThresholdError         a threshold or SLO option that makes no sense
     ├── TargetError            nothing answers at the URL, or the model is not served (exit 1)
     └── UniformFailureError    every request of a run failed the same way (exit 1)

A failing request is never raised: it becomes a record with an ``error`` kind.
"""

from kubellm.bench.errors import BenchError, ResultFileError, ThresholdError, WorkloadError

__all__ = ["BenchError", "ResultFileError", "ThresholdError", "WorkloadError"]
