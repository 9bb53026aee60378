"""The LLMService resource: `apiVersion: kubellm.dev/v1alpha1`, `kind: LLMService`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kubellm.spec.base import SpecModel
from kubellm.spec.cache import Cache
from kubellm.spec.checks import check_spec
from kubellm.spec.cost import Cost
from kubellm.spec.cost_checks import check_cost
from kubellm.spec.defaults import fill_dependent_defaults
from kubellm.spec.engine import Engine
from kubellm.spec.errors import CrossFieldError
from kubellm.spec.exposure import Exposure
from kubellm.spec.model import ModelSource
from kubellm.spec.observability import Observability
from kubellm.spec.resources import Resources
from kubellm.spec.rollout import Rollout
from kubellm.spec.routing import Routing
from kubellm.spec.scaling import Scaling
from kubellm.spec.security import Security
from kubellm.spec.serving import Serving
from kubellm.spec.slo import Slo
from kubellm.spec.types import DnsLabel, KubeName, LabelMap

API_VERSION: Literal["kubellm.dev/v1alpha1"] = "kubellm.dev/v1alpha1"
KIND: Literal["LLMService"] = "LLMService"


class Metadata(SpecModel):
    """Object metadata (the subset the renderer uses)."""

    name: DnsLabel
    """Name of the service; every rendered object's name starts with it."""
    namespace: KubeName | None = None
    """Namespace of the rendered objects (default: the one kubectl/the operator uses)."""
    labels: LabelMap = {}
    """Labels added to every rendered object."""
    annotations: dict[str, str] = {}
    """Annotations of the LLMService object (not copied to rendered objects)."""


class LLMServiceSpec(SpecModel):
    """What to serve, how, and with what guarantees."""

    model: ModelSource
    """The model and where its weights come from."""
    engine: Engine = Engine()
    """The inference engine and its options."""
    cache: Cache = Cache()
    """How weights reach the engine pods."""
    resources: Resources = Resources()
    """CPU, memory, accelerators and placement per pod."""
    serving: Serving = Serving()
    """Serving mode (standard, disaggregated, multinode) and per-role settings."""
    scaling: Scaling = Scaling()
    """Replicas and autoscaling (standard and multinode modes)."""
    rollout: Rollout = Rollout()
    """Update strategy and canary."""
    exposure: Exposure = Exposure()
    """Service and Ingress."""
    security: Security = Security()
    """API keys, NetworkPolicy, tenant RBAC, disruption budget, GPU quota."""
    observability: Observability = Observability()
    """Monitors, alerts, dashboard, tracing."""
    slo: Slo = Slo()
    """Service level objectives (alerts and `kubellm check`)."""
    routing: Routing = Routing()
    """Gateway routing profile."""
    cost: Cost = Cost()
    """Spot pools with on-demand fallback, a serving PriorityClass, GPU sharing, a budget alert."""

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        return fill_dependent_defaults(data)


class LLMService(SpecModel):
    """An LLM served on Kubernetes."""

    api_version: Literal["kubellm.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    """Always kubellm.dev/v1alpha1."""
    kind: Literal["LLMService"] = KIND
    """Always LLMService."""
    metadata: Metadata
    """Name, namespace, labels."""
    spec: LLMServiceSpec
    """The service's specification."""

    @model_validator(mode="after")
    def _check_cross_field(self) -> LLMService:
        issues = check_spec(self.spec) + check_cost(self.spec)
        if issues:
            raise CrossFieldError(issues)
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    def to_dict(self) -> dict[str, Any]:
        """The spec as camelCase plain data (what `kubectl apply` would take)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
