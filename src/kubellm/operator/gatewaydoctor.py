"""`kubellm doctor`, the gateway part: can the namespace's gateway see and reach its engines?

Three ways it cannot, each its own check:
  gateway-rbac     its Role does not grant list/watch on EndpointSlices, or is not bound to
                   the ServiceAccount its pods run as (discovery then sees nothing);
  gateway-labels   a model of its config has no engine Service carrying the labels its
                   discovery selects (the EndpointSlices copy a Service's labels);
  gateway-network  a NetworkPolicy keeps the gateway's pods from the engines' port (an
                   engine policy that does not admit them, or a gateway policy without egress).
Two about routing quality: gateway-kv-hashing (kvhashdoctor.py: precise routing whose hashes
can never match) and gateway-prefix-processes (prefixdoctor.py: approximate prefix routing
split over several gateway processes).

``GatewayFacts`` is read by ``gather_gateway`` (the only I/O); ``gateway_findings`` is pure.
NetworkPolicy peers are matched the way the API defines them, for pods of this namespace
(namespaces are matched by their ``kubernetes.io/metadata.name`` label only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from kubellm.gateway.k8s import ROLE_LABEL, parse_selector
from kubellm.operator.kinds import MANAGED_KINDS
from kubellm.operator.kube import Kube
from kubellm.operator.kvhashdoctor import kv_hash_checks
from kubellm.operator.prefixdoctor import prefix_process_checks
from kubellm.render.context import label_value
from kubellm.render.gateway import NAME
from kubellm.render.security import ENGINE_COMPONENTS

Body = dict[str, Any]
Level = Literal["ok", "warn", "fail"]
Check = tuple[str, Level, str]
_KINDS = {k.kind: k for k in MANAGED_KINDS}


@dataclass
class GatewayFacts:
    namespace: str
    config: Body | None = None
    """The parsed gateway.yaml of ConfigMap kubellm-gateway (None: no gateway config here)."""
    deployment: Body | None = None
    autoscaler: Body | None = None
    """The gateway's HorizontalPodAutoscaler (its minReplicas), if any."""
    role: Body | None = None
    binding: Body | None = None
    services: list[Body] = field(default_factory=list)
    engines: list[Body] = field(default_factory=list)
    """Engine Deployments (their pod template labels and port are what policies select)."""
    policies: list[Body] = field(default_factory=list)


def selects(selector: Body | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches *labels* (None matches nothing; {} everything)."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: Body, labels: dict[str, str], namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # pod IPs change; a policy that relies on them is not what kubellm renders
    if "namespaceSelector" in peer and not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
        return False
    return selects(peer.get("podSelector", {}), labels)


def _port_matches(rule: Body, port: int, port_name: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") in (None, port, port_name) for p in ports)


def allows(policy: Body, direction: Literal["ingress", "egress"], peer: dict[str, str], port: int, port_name: str,
           namespace: str) -> bool:
    """Whether one policy's *direction* rules let *peer*'s pods through on *port*."""
    key = "from" if direction == "ingress" else "to"
    for rule in (policy.get("spec") or {}).get(direction) or []:
        peers = rule.get(key)
        if (not peers or any(_peer_matches(p, peer, namespace) for p in peers)) and _port_matches(rule, port, port_name):
            return True
    return False


def _governing(policies: Iterable[Body], labels: dict[str, str], kind: str) -> list[Body]:
    out = []
    for policy in policies:
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
        if kind in types and selects(spec.get("podSelector"), labels):
            out.append(policy)
    return out


def _template_labels(obj: Body) -> dict[str, str]:
    return dict(((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})


def _http_port(obj: Body) -> tuple[int, str] | None:
    for container in obj["spec"]["template"]["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "http":
                return int(port["containerPort"]), "http"
    return None


def network_checks(facts: GatewayFacts) -> list[Check]:
    if facts.deployment is None:
        return []
    gateway = _template_labels(facts.deployment)
    blocked = []
    for engine in facts.engines:
        labels, port = _template_labels(engine), _http_port(engine)
        if port is None:
            continue
        name = engine["metadata"]["name"]
        ingress = _governing(facts.policies, labels, "Ingress")
        if ingress and not any(allows(p, "ingress", gateway, *port, facts.namespace) for p in ingress):
            names = ", ".join(sorted(p["metadata"]["name"] for p in ingress))
            blocked.append(f"NetworkPolicy {names} select(s) the pods of {name} and admit(s) no pod labelled "
                           f"{_labels(gateway)} (the gateway's) on port {port[0]}: set "
                           "spec.security.networkPolicy.gatewayPodLabels/gatewayNamespace to match the gateway")
        egress = _governing(facts.policies, gateway, "Egress")
        if egress and not any(allows(p, "egress", labels, *port, facts.namespace) for p in egress):
            names = ", ".join(sorted(p["metadata"]["name"] for p in egress))
            blocked.append(f"NetworkPolicy {names} select(s) the gateway's pods and allow(s) no egress to {name} on port {port[0]}")
    if blocked:
        return [("gateway-network", "fail", "; ".join(blocked))]
    return [("gateway-network", "ok", f"the gateway's pods may reach {len(facts.engines)} engine workload(s)")]


def rbac_checks(facts: GatewayFacts) -> list[Check]:
    if facts.deployment is None:
        return []
    account = facts.deployment["spec"]["template"]["spec"].get("serviceAccountName") or "default"
    if facts.role is None:
        return [("gateway-rbac", "fail", f"no Role {NAME} in {facts.namespace}: the gateway cannot list EndpointSlices")]
    granted = {v for r in facts.role.get("rules") or [] if "endpointslices" in (r.get("resources") or [])
               and "discovery.k8s.io" in (r.get("apiGroups") or []) for v in r.get("verbs") or []}
    missing = sorted({"list", "watch"} - granted - ({"list", "watch"} if "*" in granted else set()))
    if missing:
        return [("gateway-rbac", "fail", f"Role {NAME} does not grant {', '.join(missing)} on endpointslices.discovery.k8s.io: "
                                         "the gateway's discovery sees no engine")]
    subjects = (facts.binding or {}).get("subjects") or []
    if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in subjects):
        return [("gateway-rbac", "fail", f"RoleBinding {NAME} does not bind ServiceAccount {account}, which the gateway's pods run as")]
    return [("gateway-rbac", "ok", f"ServiceAccount {account} may list and watch EndpointSlices")]


def pools(config: Body) -> list[str]:
    """Every pool the gateway discovers: models, their canaries, prefill/decode roles."""
    found = []
    for model in config.get("models") or []:
        if model.get("endpoints"):
            continue  # static endpoints: nothing to discover
        disagg = model.get("disaggregation")
        found += [f"{model['name']}/prefill", f"{model['name']}/decode"] if disagg else [model["name"]]
    return found


def label_checks(facts: GatewayFacts) -> list[Check]:
    if facts.config is None or facts.config.get("kubernetes") is None:
        return []
    kube = facts.config["kubernetes"]
    wanted = parse_selector(kube.get("labelSelector", "kubellm.dev/component=engine"))
    model_label = kube.get("modelLabel", "kubellm.dev/model")
    seen: set[str] = set()
    for svc in facts.services:
        labels = (svc.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in wanted.items()) and labels.get(model_label):
            role = labels.get(ROLE_LABEL)
            seen.add(labels[model_label] + (f"/{role}" if role in ("prefill", "decode") else ""))
    missing = []
    for pool in pools(facts.config):
        model, _, role = pool.rpartition("/") if pool.endswith(("/prefill", "/decode")) else (pool, "", "")
        if label_value(model) + (f"/{role}" if role else "") not in seen:
            missing.append(f"model {pool}: no Service labelled {_labels({**wanted, model_label: label_value(model)})}"
                           + (f",{ROLE_LABEL}={role}" if role else ""))
    if missing:
        return [("gateway-labels", "fail", "; ".join(missing) + ": the gateway discovers no endpoint for it")]
    return [("gateway-labels", "ok", f"every pool of the gateway config has labelled engine Services ({len(seen)})")]


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def gateway_findings(facts: GatewayFacts) -> list[Check]:
    if facts.config is None and facts.deployment is None:
        return []
    if facts.deployment is None:
        return [("gateway", "warn", f"namespace {facts.namespace} has a gateway config and no gateway Deployment {NAME}: "
                                    "run the gateway yourself, or the operator with its gateway on")]
    return (rbac_checks(facts) + label_checks(facts) + network_checks(facts) + kv_hash_checks(facts.config, facts.engines)
            + prefix_process_checks(facts.config, facts.deployment, facts.autoscaler))


async def gather_gateway(kube: Kube, namespace: str) -> GatewayFacts:
    facts = GatewayFacts(namespace)
    configmap = await kube.get(_KINDS["ConfigMap"], NAME, namespace)
    if configmap is not None:
        loaded = yaml.safe_load((configmap.get("data") or {}).get("gateway.yaml") or "")
        facts.config = loaded if isinstance(loaded, dict) else None
    facts.deployment = await kube.get(_KINDS["Deployment"], NAME, namespace)
    if facts.config is None and facts.deployment is None:
        return facts
    facts.autoscaler = await kube.get(_KINDS["HorizontalPodAutoscaler"], NAME, namespace)
    facts.role = await kube.get(_KINDS["Role"], NAME, namespace)
    facts.binding = await kube.get(_KINDS["RoleBinding"], NAME, namespace)
    facts.services = await kube.list(_KINDS["Service"], namespace)
    facts.policies = await kube.list(_KINDS["NetworkPolicy"], namespace)
    facts.engines = [d for d in await kube.list(_KINDS["Deployment"], namespace, {"app.kubernetes.io/name": "llmservice"})
                     if _template_labels(d).get("app.kubernetes.io/component") in ENGINE_COMPONENTS]
    return facts
