"""Policy parameters from ``--set policy.field=value``: built, range-checked, errors with paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from kubellm.plan import policies as P
from kubellm.plan.errors import PlanConfigError

PARAMS: dict[str, type[BaseModel]] = {
    "hpa-gpu": P.HpaParams, "keda-queue": P.HpaParams, "kubeai": P.KubeAiParams,
    "kpa": P.KpaParams, "kubellm": P.KubellmParams,
}
DEFAULTS: dict[str, dict[str, Any]] = {"keda-queue": {"metric": "queue", "target": 5.0}}


def parse_sets(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["kpa.panicThreshold=3"]`` -> ``{"kpa": {"panicThreshold": "3"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        policy, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise PlanConfigError(f"--set {item!r}: write POLICY.FIELD=VALUE, e.g. kubellm.targetRunning=24")
        if policy not in PARAMS:
            raise PlanConfigError(f"--set {item!r}: unknown policy {policy!r} (known: {', '.join(PARAMS)})")
        out.setdefault(policy, {})[name] = value
    return out


def build(policy: str, overrides: Mapping[str, Any]) -> BaseModel:
    """The parameters of *policy*: its field recipe, then *overrides*; range errors name the field."""
    model = PARAMS[policy]
    try:
        return model.model_validate({**DEFAULTS.get(policy, {}), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise PlanConfigError(f"policies.{policy}.{field}: {err['msg']}{_range(model, field)}") from None


def _range(model: type[BaseModel], alias: str) -> str:
    for name, info in model.model_fields.items():
        if alias not in (name, info.alias):
            continue
        lo = hi = "..."
        for m in info.metadata:
            if isinstance(m, (Ge, Gt)):
                lo = f"{'[' if isinstance(m, Ge) else '('}{getattr(m, 'ge', getattr(m, 'gt', ''))}"
            if isinstance(m, (Le, Lt)):
                hi = f"{getattr(m, 'le', getattr(m, 'lt', ''))}{']' if isinstance(m, Le) else ')'}"
        return f" (allowed range {lo}, {hi})" if lo != "..." or hi != "..." else ""
    known = sorted(i.alias or n for n, i in model.model_fields.items())
    return f" (fields: {', '.join(known)})"


def make(policy: str, params: BaseModel) -> P.Policy:
    """A fresh policy object (policies keep state, so every run gets its own)."""
    makers: dict[str, Callable[[Any], P.Policy]] = {
        "hpa-gpu": lambda p: P.Hpa("hpa-gpu", p), "keda-queue": lambda p: P.Hpa("keda-queue", p),
        "kubeai": P.KubeAi, "kpa": P.Kpa, "kubellm": P.Kubellm,
    }
    return makers[policy](params)
