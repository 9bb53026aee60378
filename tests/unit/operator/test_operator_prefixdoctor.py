"""doctor's gateway-prefix-processes check (operator/prefixdoctor.py) over what kubellm really
renders: the default gateway (2 replicas through its HPA, approximate prefix routing) warns
naming the model and the process count; precise routing, one process, or a profile without
the approximate prefix scorer does not; replicas and --workers multiply."""

from __future__ import annotations

from typing import Any

import yaml

from kubellm.gateway.fromspec import gateway_configmap
from kubellm.operator.prefixdoctor import gateway_processes, prefix_process_checks
from kubellm.render.gateway import GatewaySettings, gateway_objects
from kubellm.spec import parse_spec

Body = dict[str, Any]


def rendered(routing: Body | None = None, settings: GatewaySettings | None = None) -> tuple[Body, Body, Body | None]:
    """(gateway config, gateway Deployment, its HPA or None) as kubellm renders them."""
    spec: Body = {"model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}}
    if routing is not None:
        spec["routing"] = routing
    svc = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                      "metadata": {"name": "chat", "namespace": "team"}, "spec": spec})
    objects = {o["kind"]: o for o in gateway_objects("team", [svc], settings)}
    config = yaml.safe_load(gateway_configmap("team", [svc])["data"]["gateway.yaml"])
    return config, objects["Deployment"], objects.get("HorizontalPodAutoscaler")


def test_the_rendered_default_warns_two_replicas_route_approximately() -> None:
    ((name, level, message),) = prefix_process_checks(*rendered())
    assert (name, level) == ("gateway-prefix-processes", "warn")
    assert "tiny-chat route(s) on approximate prefix affinity across 2 gateway processes" in message
    assert "(2 replica(s) x 1 worker(s))" in message and "spec.routing.precisePrefix" in message


def test_precise_routing_has_nothing_to_warn_about() -> None:
    assert prefix_process_checks(*rendered({"precisePrefix": {}})) == []


def test_one_process_is_ok() -> None:
    ((_, level, message),) = prefix_process_checks(*rendered(settings=GatewaySettings(replicas=1, autoscale_on="none")))
    assert level == "ok" and "one gateway process routes tiny-chat" in message


def test_workers_count_as_processes() -> None:
    config, deployment, hpa = rendered(settings=GatewaySettings(replicas=1, autoscale_on="none", cpu="2"))
    assert hpa is None and gateway_processes(deployment) == (1, 2)
    ((_, level, message),) = prefix_process_checks(config, deployment, hpa)
    assert level == "warn" and "across 2 gateway processes (1 replica(s) x 2 worker(s))" in message


def test_a_live_deployment_scaled_above_the_hpa_minimum_counts_its_replicas() -> None:
    config, deployment, hpa = rendered(settings=GatewaySettings(cpu="2"))
    deployment["spec"]["replicas"] = 3  # what the HPA set
    assert gateway_processes(deployment, hpa) == (3, 2)
    ((_, _, message),) = prefix_process_checks(config, deployment, hpa)
    assert "across 6 gateway processes" in message


def test_profiles_without_the_approximate_prefix_scorer_are_not_flagged() -> None:
    assert prefix_process_checks(*rendered({"profile": "round-robin"})) == []
    assert prefix_process_checks(*rendered({"scorers": {"prefixCache": 0, "queueDepth": 1}})) == []


def test_no_gateway_deployment_or_config_means_no_check() -> None:
    config, deployment, _ = rendered()
    assert prefix_process_checks(None, deployment) == [] and prefix_process_checks(config, None) == []
