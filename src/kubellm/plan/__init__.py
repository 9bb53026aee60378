"""kubellm.plan: capacity planning by simulating a fleet in virtual time (``kubellm plan``).

Pieces, each pure: :mod:`~kubellm.plan.tracefile` (user traces) and
:mod:`~kubellm.plan.workloads` (built-in traces); :mod:`~kubellm.plan.replica` (one engine
over the simulator's cost model); :mod:`~kubellm.plan.provision` (cold starts by cache
kind); :mod:`~kubellm.plan.policies` (the field's autoscalers and kubellm's);
:mod:`~kubellm.plan.fleet` (gateway routing, scaling, nodes); :mod:`~kubellm.plan.report`
and :mod:`~kubellm.plan.search` (figures, the plan). :mod:`~kubellm.plan.command` and
``cli`` are the edge. Design and results: ``docs/plan.md``.

Errors::

    PlanError               base
    ├── TraceError          a trace file line that cannot be used (file:line: ...)
    └── PlanConfigError     a parameter out of range (field path and allowed range)
"""
