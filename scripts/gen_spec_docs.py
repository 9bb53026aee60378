"""Generate docs/spec-reference.md (from the spec models) and docs/examples/*.md (from each
example's header comment and its rendered objects).

    .venv/bin/python scripts/gen_spec_docs.py          # write the pages
    .venv/bin/python scripts/gen_spec_docs.py --check  # exit 1 if a page is out of date
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kubellm.render import render
from kubellm.spec import LLMService, load_spec
from kubellm.spec.service import LLMServiceSpec

ROOT = Path(__file__).resolve().parents[1]

WHY = {
    "StorageClass": "a class for the cache claim (reclaim policy, zones) when `cache.storageClass` asks for one",
    "ServiceAccount": "the pods' identity, with no API token mounted",
    "PersistentVolumeClaim": "the weights cache, filled once and mounted read-only by the engines",
    "Job": "the loader: `kubellm pull URI /cache/<key>` writes the weights into the cache claim",
    "NetworkPolicy": "default deny for every pod of the service, then only the gateway, ingress and Prometheus in; loader out to HTTPS",
    "Role": "what a tenant may do in the namespace",
    "RoleBinding": "binds a tenant's users, groups or service accounts to its Role",
    "ResourceQuota": "caps the accelerators the namespace may request",
    "Deployment": "the engine pods (secure pod template, probes, resources, placement)",
    "Rollout": "the engine pods as an Argo Rollouts canary with weight steps",
    "LeaderWorkerSet": "groups of pods across nodes: a Ray head running vLLM plus Ray workers",
    "Service": "a stable address for the engines (the gateway discovers endpoints through it)",
    "PodDisruptionBudget": "at most one engine pod voluntarily evicted at a time",
    "ScaledObject": "KEDA autoscaling on the chosen vLLM signal",
    "HorizontalPodAutoscaler": "HPA autoscaling on a custom metric served by the Prometheus Adapter",
    "ConfigMap": "the Grafana dashboard, or the Prometheus Adapter rules the HPA needs",
    "Ingress": "the public entry point, with TLS when configured",
    "PodMonitor": "tells the Prometheus Operator to scrape the engines' /metrics",
    "ServiceMonitor": "tells the Prometheus Operator to scrape the engines' /metrics through the Service",
    "PrometheusRule": "alerts: error rate, TTFT p50/p99, TPOT p99, KV cache near full, queue growing, pods not ready",
}


def _type_name(annotation: object) -> str:
    text = str(annotation).replace("typing.", "")
    for prefix in ("kubellm.spec.", "<class '"):
        text = text.replace(prefix, "")
    text = text.replace("'>", "")
    return " ".join(text.split())


def _nested(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested(arg)]


def _model_section(model: type[BaseModel], path: str) -> list[str]:
    lines = [f"### `{path}`", "", (model.__doc__ or "").strip(), "", "| field | type | default | description |", "|---|---|---|---|"]
    children: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        default = "required" if field.is_required() else ("computed" if field.default_factory else repr(field.default))
        nested = _nested(field.annotation)
        type_name = nested[0].__name__ if nested else _type_name(field.annotation)
        if nested:
            default = "see below" if not field.is_required() else default
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        cells = [f"`{alias}`", type_name, str(default), description]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") if i < 3 else cell for i, cell in enumerate(cells)) + " |")
        children += [(f"{path}.{alias}", child) for child in nested]
    lines.append("")
    for child_path, child in children:
        lines += _model_section(child, child_path)
    return lines


def spec_reference() -> str:
    header = [
        "# LLMService spec reference",
        "",
        "Generated from the pydantic models in `src/kubellm/spec/` by `scripts/gen_spec_docs.py`;",
        "do not edit by hand. YAML keys are camelCase; unknown keys are errors. `kubellm schema`",
        "prints the JSON Schema and `kubellm schema --crd` the CustomResourceDefinition.",
        "",
        f"`apiVersion: {LLMService.model_fields['api_version'].default}`, `kind: LLMService`, `metadata` (name, namespace, labels), `spec`:",
        "",
    ]
    return "\n".join(header + _model_section(LLMServiceSpec, "spec")).rstrip() + "\n"


def _header_comment(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "LeaderWorkerSet":
        return dict(spec["leaderWorkerTemplate"]["workerTemplate"]["spec"])
    return dict((spec.get("template") or {}).get("spec") or {})


def _gpus(obj: dict[str, Any]) -> str:
    limits = ((_pod_spec(obj).get("containers") or [{}])[0].get("resources") or {}).get("limits") or {}
    return next((f"{v} x {k}" for k, v in limits.items() if k.endswith("/gpu")), "no GPU")


def _network_why(obj: dict[str, Any]) -> str:
    spec = obj["spec"]
    if not spec.get("ingress") and not spec.get("egress"):
        return "default deny: no traffic in or out of any pod of the service unless a policy below allows it"
    if "Ingress" not in spec.get("policyTypes", []):
        ports = sorted({p["port"] for rule in spec["egress"] for p in rule.get("ports", [])} - {53})
        return f"the loader may reach only DNS and ports {', '.join(map(str, ports))} (the model store)"
    ports = sorted({p["port"] for rule in spec["ingress"] for p in rule.get("ports", [])})
    return f"engines accept port {', '.join(map(str, ports))} only from the gateway, the ingress and Prometheus"


def _scaler_why(obj: dict[str, Any]) -> str:
    spec = obj["spec"]
    low, high = spec.get("minReplicaCount", spec.get("minReplicas")), spec.get("maxReplicaCount", spec.get("maxReplicas"))
    target = spec["scaleTargetRef"]["name"]
    queries = [t["metadata"].get("query", "") for t in spec.get("triggers", [])]
    signal = ", ".join(sorted({q.split("(", 2)[-1].split("{")[0] for q in queries if q})) or "a custom metric"
    return f"scales `{target}` between {low} and {high} replicas on {signal}"


def why(obj: dict[str, Any]) -> str:
    """What this one object is for, from its own content (WHY is the fallback per kind)."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    component = (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
    if kind == "NetworkPolicy":
        return _network_why(obj)
    if kind in ("ScaledObject", "HorizontalPodAutoscaler"):
        return _scaler_why(obj)
    if kind in ("Deployment", "Rollout", "LeaderWorkerSet"):
        role = f"the {component} role" if component in ("prefill", "decode", "canary") else "the engine"
        replicas = f"{spec['replicas']} replica(s)" if "replicas" in spec else "replicas set by its autoscaler"
        return f"{WHY[kind]}: {role}, {replicas}, {_gpus(obj)} each"
    if kind == "Job":
        args = _pod_spec(obj)["containers"][0]["args"]
        return f"the loader: `kubellm {' '.join(args[:3])}` fills the cache claim once, then the engines start"
    if kind == "PersistentVolumeClaim":
        return (f"the weights cache ({spec['resources']['requests']['storage']}, {', '.join(spec['accessModes'])}), "
                "filled once and mounted read-only by the engines")
    if kind == "ConfigMap":
        return "the Prometheus Adapter rule the HPA's custom metric needs" if component == "autoscaling" \
            else "the Grafana dashboard (token throughput, TTFT/TPOT, KV cache, queue, GPU)"
    if kind == "Service" and component in ("prefill", "decode", "canary"):
        return f"a stable address for the {component} engines (the gateway discovers their endpoints through it)"
    if kind == "PodDisruptionBudget":
        return f"at most one {component} pod voluntarily evicted at a time"
    return WHY.get(kind, "")


def example_page(path: Path) -> str:
    objects = render(load_spec(path))
    rows = [f"| {o['kind']} | `{o['metadata']['name']}` | {why(o)} |" for o in objects]
    return "\n".join([
        f"# Example: {path.stem}",
        "",
        _header_comment(path),
        "",
        "```yaml",
        path.read_text().rstrip(),
        "```",
        "",
        f"`kubellm render examples/{path.name}` creates, in apply order:",
        "",
        "| kind | name | why |",
        "|---|---|---|",
        *rows,
        "",
        f"The full output is in `tests/unit/render/golden/{path.stem}.yaml`.",
        "",
    ])


def pages() -> dict[Path, str]:
    out = {ROOT / "docs" / "spec-reference.md": spec_reference()}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        out[ROOT / "docs" / "examples" / f"{path.stem}.md"] = example_page(path)
    return out


def main(argv: list[str]) -> int:
    stale = []
    for path, text in pages().items():
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"out of date: {path.relative_to(ROOT)} (run scripts/gen_spec_docs.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
