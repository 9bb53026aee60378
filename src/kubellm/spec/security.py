"""Access control: `spec.security`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubellm.spec.base import SecretKeyRef, SpecModel
from kubellm.spec.types import DnsLabel, KubeName, LabelMap, Quantity


class TenantLimits(SpecModel):
    """What one tenant of the keys file (its `tenant:` prefix) may use, enforced by the gateway."""

    name: DnsLabel
    """Tenant name, as the keys file's `tenant:key` lines name it."""
    models: tuple[str, ...] = ("*",)
    """Models (served names) the tenant may call; `*`: all."""
    requests_per_minute: int | None = Field(None, ge=1)
    """Requests per minute (unset: unlimited); over it the gateway answers 429 with Retry-After."""
    tokens_per_minute: int | None = Field(None, ge=1)
    """Prompt plus completion tokens per minute (unset: unlimited); over it, 429 with Retry-After."""


class ApiKeys(SpecModel):
    """Gateway API keys, from a Secret (one key per line, or `tenant:key` lines)."""

    secret_ref: SecretKeyRef
    """Secret and key holding the API keys."""
    tenants: tuple[TenantLimits, ...] = ()
    """Limits per tenant (a tenant not listed may call every model, unlimited)."""


class Subject(SpecModel):
    """Who a tenant role binds."""

    kind: Literal["User", "Group", "ServiceAccount"] = "Group"
    """Subject kind."""
    name: str
    """Subject name."""
    namespace: KubeName | None = None
    """Namespace of a ServiceAccount subject (default: the service's)."""


class Tenant(SpecModel):
    """A team given access to this service's objects in the namespace."""

    name: DnsLabel
    """Tenant name (used in the Role name)."""
    access: Literal["view", "operate"] = "view"
    """view: read objects and logs; operate: also scale and restart."""
    subjects: tuple[Subject, ...]
    """Users, groups or service accounts of the tenant."""


class NetworkPolicySpec(SpecModel):
    """Default-deny network policy with narrow allowances."""

    enabled: bool = True
    """Render the NetworkPolicies."""
    gateway_pod_labels: LabelMap = {"app.kubernetes.io/name": "kubellm-gateway"}
    """Labels of the kubellm gateway pods allowed to call the engines."""
    gateway_namespace: KubeName | None = None
    """Namespace of the gateway (default: the service's)."""
    prometheus_namespace: KubeName = "monitoring"
    """Namespace whose pods may scrape /metrics."""
    operator_namespace: KubeName = "kubellm-system"
    """Namespace of the kubellm operator: with scaling.backend operator its pods read the
    engines' and the gateway's /metrics to scale, so they are let in."""
    allow_egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Where the loader Job may download from."""
    allow_egress_ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = Field((443, 80), min_length=1)
    """TCP ports the loader Job may download from. Policies match the port the source's pod
    listens on (after a Service's port translation): add 9000 for an in-cluster MinIO, for one."""


class Security(SpecModel):
    """API keys, network policy, tenant RBAC, disruption budget and GPU quota."""

    api_keys: ApiKeys | None = None
    """Gateway API keys (none: the gateway accepts unauthenticated requests)."""
    network_policy: NetworkPolicySpec = NetworkPolicySpec()
    """NetworkPolicy settings."""
    tenants: tuple[Tenant, ...] = ()
    """Tenants given a Role and RoleBinding."""
    gpu_quota: Quantity | None = None
    """ResourceQuota on requests of the accelerator resource in the namespace."""
    pod_disruption_budget: bool = True
    """Render a PodDisruptionBudget (maxUnavailable 1) when there is more than one replica."""
    run_as_user: int = Field(10001, ge=10000, le=2147483647)
    """UID (and GID) of every container: non-root, and high so it collides with no host user."""
