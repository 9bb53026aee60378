"""ServiceAccount, NetworkPolicies, tenant RBAC, PodDisruptionBudgets and the GPU quota."""

from __future__ import annotations

from kubellm.render.context import Obj, RenderContext
from kubellm.render.cost import disruption_floor, requested_resource
from kubellm.render.units import Unit

ENGINE_COMPONENTS = ["canary", "decode", "engine", "prefill", "worker"]
DNS_EGRESS = {
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
}


def service_account(ctx: RenderContext) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": ctx.metadata(ctx.name, "identity"),
        "automountServiceAccountToken": False,
    }


def _policy(ctx: RenderContext, name: str, selector: Obj, ingress: list[Obj] | None, egress: list[Obj]) -> Obj:
    types = ["Egress"] if ingress is None else ["Ingress", "Egress"]
    spec: Obj = {"egress": egress, "podSelector": selector, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": ctx.metadata(name, "network"), "spec": spec}


def _namespace(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _engine_selector(ctx: RenderContext) -> Obj:
    return {
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": ENGINE_COMPONENTS}],
        "matchLabels": {"app.kubernetes.io/instance": ctx.name},
    }


def _engine_ingress(ctx: RenderContext) -> list[Obj]:
    spec = ctx.service.spec
    net = spec.security.network_policy
    port = [{"port": spec.engine.port, "protocol": "TCP"}]
    gateway: Obj = {"podSelector": {"matchLabels": dict(net.gateway_pod_labels)}}
    if net.gateway_namespace:
        gateway.update(_namespace(net.gateway_namespace))
    peers = [gateway, _namespace(net.prometheus_namespace)]
    if spec.scaling.backend == "operator":  # the operator scales on the engines' gauges
        peers.append(_namespace(net.operator_namespace))
    ingress, route = spec.exposure.ingress, spec.exposure.http_route
    if ingress is not None and ingress.backend_service is None:
        peers.append(_namespace(ingress.controller_namespace))
    if route is not None and route.backend_service is None:
        peers.append(_namespace(route.gateway_namespace or ctx.namespace or "default"))
    rules = [{"from": peers, "ports": port}]
    if spec.routing.precise_prefix is not None:  # the gateway subscribes to the engines' KV events
        rules.append({"from": [gateway], "ports": [{"port": spec.routing.precise_prefix.kv_events_port,
                                                    "protocol": "TCP"}]})
    if spec.serving.mode != "standard":
        # Prefill/decode KV transfer and Ray/NCCL between group members use many ports.
        rules.append({"from": [{"podSelector": _engine_selector(ctx)}]})
    return rules


def _engine_egress(ctx: RenderContext) -> list[Obj]:
    spec = ctx.service.spec
    egress: list[Obj] = [DNS_EGRESS]
    if spec.serving.mode != "standard":
        egress.append({"to": [{"podSelector": _engine_selector(ctx)}]})
    endpoint = spec.observability.otel_endpoint
    if endpoint:
        port = endpoint.rsplit(":", 1)[-1].split("/")[0]
        egress.append({"ports": [{"port": int(port) if port.isdigit() else 4317, "protocol": "TCP"}]})
    return egress


def network_policies(ctx: RenderContext, has_loader: bool) -> list[Obj]:
    if not ctx.service.spec.security.network_policy.enabled:
        return []
    deny = _policy(ctx, f"{ctx.name}-default-deny", {"matchLabels": {"app.kubernetes.io/instance": ctx.name}}, [], [])
    engine = _policy(ctx, f"{ctx.name}-engine", _engine_selector(ctx), _engine_ingress(ctx), _engine_egress(ctx))
    policies = [deny, engine]
    if has_loader:
        allowed = ctx.service.spec.security.network_policy
        web = {"ports": [{"port": port, "protocol": "TCP"} for port in allowed.allow_egress_ports],
               "to": [{"ipBlock": {"cidr": c}} for c in allowed.allow_egress_cidrs]}
        selector = {"matchLabels": ctx.selector("loader")}
        policies.append(_policy(ctx, f"{ctx.name}-loader", selector, None, [DNS_EGRESS, web]))
    return policies


def disruption_budget(ctx: RenderContext, unit: Unit) -> list[Obj]:
    """At most one engine pod evicted at a time; with spec.cost.spot.minAvailable, a floor
    of pods kept through drains instead."""
    scaling, floor = unit.scaling, disruption_floor(ctx)
    if not ctx.service.spec.security.pod_disruption_budget or ctx.service.spec.serving.mode == "multinode":
        return []
    if scaling.min_replicas < 2 and not scaling.enabled and floor is None:
        return []
    budget: Obj = {"maxUnavailable": 1} if floor is None else {"minAvailable": floor}
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": ctx.metadata(unit.name, unit.component),
            "spec": {**budget, "selector": {"matchLabels": ctx.selector(unit.component)}},
        }
    ]


# Tenant access, namespace-wide (list/watch cannot be narrowed by name). Kubernetes only lets
# a client create a Role granting what it holds itself, so whoever applies these objects
# (the operator) must hold `tenant_grantable_rules()`.
_VIEW_RULES = [
    {"apiGroups": [""], "resources": ["events", "persistentvolumeclaims", "pods", "pods/log", "services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["kubellm.dev"], "resources": ["llmservices"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"], "verbs": ["get", "list", "watch"]},
]
_OPERATE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": ["patch", "update"]},
    {"apiGroups": ["kubellm.dev"], "resources": ["llmservices"], "verbs": ["patch", "update"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["patch", "update"]},
]
TENANT_RULES = {"view": _VIEW_RULES, "operate": _VIEW_RULES + _OPERATE_RULES}


def tenant_grantable_rules() -> list[Obj]:
    """Every rule a rendered tenant Role may grant: what the applier must hold itself."""
    return [dict(rule) for rule in TENANT_RULES["operate"]]


def tenant_rbac(ctx: RenderContext) -> list[Obj]:
    objects: list[Obj] = []
    for tenant in ctx.service.spec.security.tenants:
        name = f"{ctx.name}-tenant-{tenant.name}"
        rules = TENANT_RULES[tenant.access]
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ctx.metadata(name, "rbac"), "rules": rules})
        subjects = []
        for subject in tenant.subjects:
            entry: Obj = {"kind": subject.kind, "name": subject.name}
            if subject.kind == "ServiceAccount":
                entry["namespace"] = subject.namespace or ctx.namespace
            else:
                entry["apiGroup"] = "rbac.authorization.k8s.io"
            subjects.append(entry)
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ctx.metadata(name, "rbac"), "roleRef": role_ref, "subjects": subjects})
    return objects


def gpu_quota(ctx: RenderContext) -> list[Obj]:
    spec = ctx.service.spec
    if spec.security.gpu_quota is None:
        return []
    hard = {f"requests.{requested_resource(ctx)}": spec.security.gpu_quota}
    return [{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": ctx.metadata(f"{ctx.name}-gpu-quota", "quota"), "spec": {"hard": hard}}]
