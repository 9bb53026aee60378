"""The namespace gateway's settings as command-line flags, declared once.

`kubellm operator` parses them into :class:`~kubellm.render.gateway.GatewaySettings`;
`kubellm install` takes the same flags and writes them into the operator Deployment's
args; the Helm chart's ``gateway.*`` values become the same args (charts/kubellm). Each flag
is ``--gateway-`` plus the settings field's name in kebab case, so the three cannot drift.
A flag left out keeps the operator's default.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from kubellm.operator.errors import GatewayFlagError

PREFIX = "--gateway-"


class AutoscaleOn(str, Enum):
    """What the gateway's HorizontalPodAutoscaler follows (render/gateway.py)."""

    cpu = "cpu"
    in_flight = "inFlight"
    none = "none"


DeployOpt = Annotated[bool, typer.Option(help="Deploy each namespace's gateway (off: keep its ConfigMap only).")]
ReplicasOpt = Annotated[int | None, typer.Option(min=1, help="Gateway replicas (the autoscaler's minimum); default 2.")]
MaxReplicasOpt = Annotated[int | None, typer.Option(min=1, help="Gateway autoscaler maximum; default 10.")]
AutoscaleOnOpt = Annotated[AutoscaleOn | None, typer.Option(help="Gateway autoscaling signal; default cpu.")]
TargetCpuOpt = Annotated[int | None, typer.Option(min=1, max=100, help="Gateway autoscaler's CPU target, percent; default 70.")]
TargetInFlightOpt = Annotated[int | None, typer.Option(min=1, help="Gateway autoscaler's in-flight target per pod; default 64.")]
CpuOpt = Annotated[str | None, typer.Option(help="Gateway pod's CPU (request = limit), a quantity; default 1.")]
MemoryOpt = Annotated[str | None, typer.Option(help="Gateway pod's memory (request = limit), a quantity; default 512Mi.")]
DrainOpt = Annotated[int | None, typer.Option(min=0, max=3600, help="Seconds in-flight requests get at SIGTERM; default 30.")]
PrometheusNsOpt = Annotated[str | None, typer.Option(help="Namespace of the Prometheus that scrapes the gateway; default monitoring.")]


class GatewayFlags(BaseModel):
    """The flags' values as given (None: left out, the operator's default applies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deploy: bool = True
    replicas: int | None = None
    max_replicas: int | None = None
    autoscale_on: AutoscaleOn | None = None
    target_cpu_percent: int | None = None
    target_in_flight: int | None = None
    cpu: str | None = None
    memory: str | None = None
    drain_seconds: int | None = None
    prometheus_namespace: str | None = None

    def given(self) -> dict[str, Any]:
        """The settings fields set, as GatewaySettings takes them."""
        values = self.model_dump(exclude={"deploy"}, exclude_none=True)
        return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}

    def settings(self, image: str) -> Any:
        """The operator's GatewaySettings (None: deploy no gateway); a refused value raises
        GatewayFlagError naming its flag."""
        from kubellm.render.gateway import GatewaySettings  # imported late: the CLI starts without it

        if not self.deploy:
            return None
        try:
            return GatewaySettings(image=image, **self.given())
        except ValidationError as exc:
            raise GatewayFlagError("; ".join(_flag_error(e) for e in exc.errors())) from exc

    def args(self) -> list[str]:
        """The operator's command-line flags for these values (what `kubellm install` writes)."""
        flags = [] if self.deploy else ["--no-gateway"]
        return flags + [f"{flag(name)}={value}" for name, value in self.given().items()]


def flag(field: str) -> str:
    return PREFIX + field.replace("_", "-")


def _flag_error(error: Any) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    return f"{flag(field)}={error.get('input')!r}: {error['msg']}"
