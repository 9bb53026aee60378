"""Metrics, alerts, dashboards and tracing: `spec.observability`."""

from __future__ import annotations

from typing import Literal

from kubellm.spec.base import SpecModel
from kubellm.spec.types import LabelMap


class Observability(SpecModel):
    """Prometheus Operator monitors and rules, a Grafana dashboard, OpenTelemetry."""

    monitor: Literal["podMonitor", "serviceMonitor", "none"] = "podMonitor"
    """Prometheus Operator object that scrapes the engines' /metrics."""
    monitor_labels: LabelMap = {"release": "kube-prometheus-stack"}
    """Labels your Prometheus selects monitors and rules by."""
    scrape_interval_seconds: int = 15
    """Scrape interval."""
    alerts: bool = True
    """Render a PrometheusRule with alerts (thresholds from spec.slo)."""
    dashboard: bool = True
    """Render a Grafana dashboard ConfigMap (label grafana_dashboard: "1")."""
    otel_endpoint: str | None = None
    """OTLP endpoint for traces (e.g. http://otel-collector.observability:4317)."""
