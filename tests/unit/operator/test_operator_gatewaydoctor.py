"""doctor's gateway checks (operator/gatewaydoctor.py) over the objects kubellm really
renders: all ok as rendered; each way of breaking discovery or reachability (RBAC, labels,
NetworkPolicy on either side) fails its own check and says which object is at fault."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from kubellm.gateway.fromspec import gateway_configmap
from kubellm.operator.gatewaydoctor import GatewayFacts, gateway_findings, selects
from kubellm.render import render
from kubellm.render.gateway import gateway_objects
from kubellm.spec import parse_spec

Facts = GatewayFacts


def facts(**security: Any) -> GatewayFacts:
    svc = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat", "namespace": "team"},
                      "spec": {"model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}, "security": security}})
    objects = render(svc) + gateway_objects("team", [svc])
    named = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    config = yaml.safe_load(gateway_configmap("team", [svc])["data"]["gateway.yaml"])
    return GatewayFacts(
        namespace="team", config=config, deployment=named[("Deployment", "kubellm-gateway")],
        autoscaler=named[("HorizontalPodAutoscaler", "kubellm-gateway")],
        role=named[("Role", "kubellm-gateway")], binding=named[("RoleBinding", "kubellm-gateway")],
        services=[o for o in objects if o["kind"] == "Service"], engines=[named[("Deployment", "chat")]],
        policies=[o for o in objects if o["kind"] == "NetworkPolicy"])


def levels(f: GatewayFacts) -> dict[str, tuple[str, str]]:
    return {check: (level, message) for check, level, message in gateway_findings(f)}


def test_what_kubellm_renders_passes_every_gateway_check() -> None:
    found = levels(facts())
    # the one warning: approximate prefix routing over the default 2 replicas (test_operator_prefixdoctor)
    assert {k: v[0] for k, v in found.items()} == {"gateway-rbac": "ok", "gateway-labels": "ok", "gateway-network": "ok",
                                                   "gateway-prefix-processes": "warn"}


def _drop_watch(f: Facts) -> None:
    f.role["rules"][0]["verbs"] = ["list"]  # type: ignore[index]


def _unbind(f: Facts) -> None:
    f.binding["subjects"] = [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}]  # type: ignore[index]


def _unlabel(f: Facts) -> None:
    for svc in f.services:
        svc["metadata"]["labels"].pop("kubellm.dev/model", None)


def _relabel_gateway(f: Facts) -> None:
    f.deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "my-gateway"  # type: ignore[index]


def _no_egress(f: Facts) -> None:
    policy = next(p for p in f.policies if p["metadata"]["name"] == "kubellm-gateway")
    policy["spec"]["egress"] = [r for r in policy["spec"]["egress"] if "to" not in r or "podSelector" not in r["to"][0]]


@pytest.mark.parametrize(("breaks", "check", "says"), [
    (_drop_watch, "gateway-rbac", "does not grant watch on endpointslices"),
    (_unbind, "gateway-rbac", "does not bind ServiceAccount kubellm-gateway"),
    (_unlabel, "gateway-labels", "model tiny-chat: no Service labelled kubellm.dev/component=engine,kubellm.dev/model=tiny-chat"),
    (_relabel_gateway, "gateway-network", "NetworkPolicy chat-default-deny, chat-engine select(s) the pods of chat"),
    (_no_egress, "gateway-network", "NetworkPolicy kubellm-gateway select(s) the gateway's pods and allow(s) no egress to chat"),
])
def test_each_break_fails_its_check_naming_the_cause(breaks: Callable[[Facts], None], check: str, says: str) -> None:
    f = copy.deepcopy(facts())
    breaks(f)
    level, message = levels(f)[check]
    assert level == "fail" and says in message, message
    as_rendered = {name: lvl for name, (lvl, _) in levels(facts()).items()}
    assert all(lvl == as_rendered[name] for name, (lvl, _) in levels(f).items() if name != check)


def test_spec_gateway_labels_that_match_no_gateway_pod_are_found() -> None:
    level, message = levels(facts(networkPolicy={"gatewayPodLabels": {"app": "gw"}}))["gateway-network"]
    assert level == "fail" and "gatewayPodLabels" in message


def test_no_gateway_no_findings_and_a_config_without_deployment_warns() -> None:
    assert gateway_findings(GatewayFacts("team")) == []
    f = facts()
    f.deployment = None
    assert gateway_findings(f)[0][:2] == ("gateway", "warn")


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({}, {"a": "1"}, True),
    (None, {"a": "1"}, False),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
])
def test_label_selectors_match_as_the_api_defines(selector: dict[str, Any] | None, labels: dict[str, str], expected: bool) -> None:
    assert selects(selector, labels) is expected
