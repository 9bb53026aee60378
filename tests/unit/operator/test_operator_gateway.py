"""The operator's pure gateway pieces: API-key Secret checks, owner references, status and
client URL (gatewayobjects.py), one exposure host per service (hosts.py), the report of a
config edited by hand (gatewayconfig.edited_by_hand), and the RBAC `kubellm install` grants
so the operator may create the gateway's Role."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import typer

from kubellm.operator.gatewayconfig import edited_by_hand
from kubellm.operator.gatewayobjects import client_url, gateway_status, keys_ref, owned, secret_problem
from kubellm.operator.hosts import host_conflict
from kubellm.operator.install import cluster_rules
from kubellm.render.gateway import DISCOVERY_RULES


def body(name: str, namespace: str = "team", created: str = "2026-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "creationTimestamp": created},
            "spec": spec}


def secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.mark.parametrize(("live", "expected"), [
    (None, "API-key Secret 'keys' (spec.security.apiKeys.secretRef) does not exist in namespace team"),
    (secret(other="k1"), "API-key Secret 'keys' in namespace team has no key 'token' (spec.security.apiKeys.secretRef.key)"),
    (secret(token="  \n"), "API-key Secret 'keys' key 'token' in namespace team holds no keys"),
    (secret(token="tenant-a:k1\n"), None),
])
def test_secret_problems_name_the_secret_and_key(live: dict[str, Any] | None, expected: str | None) -> None:
    ref = keys_ref(body("chat", security={"apiKeys": {"secretRef": {"name": "keys"}}}))
    assert ref == ("keys", "token")
    assert secret_problem("team", ref, live) == expected
    assert keys_ref(body("open")) is None


def test_every_gateway_object_is_owned_by_every_service_without_a_controller() -> None:
    [obj] = owned([{"kind": "Service", "metadata": {"name": "kubellm-gateway"}}], [body("a"), body("b")])
    refs = obj["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == ["uid-a", "uid-b"]
    assert not any(r["controller"] or r["blockOwnerDeletion"] for r in refs)


def test_client_url_prefers_an_exposure_routed_to_the_gateway() -> None:
    assert client_url("team", [body("a")], 80) == "http://kubellm-gateway.team.svc:80/v1"
    direct = body("a", exposure={"ingress": {"host": "direct.example.com"}})
    assert client_url("team", [direct], 80) == "http://kubellm-gateway.team.svc:80/v1"
    routed = body("b", exposure={"httpRoute": {"host": "llm.example.com", "gatewayName": "g",
                                               "backendService": "kubellm-gateway", "tls": {"secretName": "t"}}})
    assert client_url("team", [direct, routed], 80) == "https://llm.example.com/v1"


def test_gateway_status_counts_ready_pods() -> None:
    assert gateway_status(None, "u") == {"ready": False, "readyReplicas": 0, "url": "u"}
    live = {"status": {"replicas": 2, "readyReplicas": 1}}
    assert gateway_status(live, "u") == {"ready": True, "readyReplicas": 1, "replicas": 2, "url": "u"}


def test_the_newer_service_claiming_a_host_is_refused_naming_both() -> None:
    old = body("first", created="2026-01-01T00:00:00Z", exposure={"ingress": {"host": "llm.example.com"}})
    new = body("second", namespace="other", created="2026-02-01T00:00:00Z",
               exposure={"httpRoute": {"host": "llm.example.com", "gatewayName": "g"}})
    assert host_conflict(old, [old, new]) is None
    message = host_conflict(new, [old, new])
    assert message is not None and "team/first" in message and "other/second" in message
    gone = {**old, "metadata": {**old["metadata"], "deletionTimestamp": "2026-03-01T00:00:00Z"}}
    assert host_conflict(new, [gone, new]) is None


def test_a_hand_edit_is_reported_as_invalid_or_restored() -> None:
    kind, reason, message = edited_by_hand("team", {"data": {"gateway.yaml": "models: [{nme: x}]"}})
    assert (kind, reason) == ("Warning", "GatewayConfigInvalidEdit")
    assert "keep their last good config" in message and "models.0" in message
    kind, reason, _ = edited_by_hand("team", {"data": {"gateway.yaml": "models: []"}})
    assert (kind, reason) == ("Normal", "GatewayConfigRestored")
    assert edited_by_hand("team", {"data": {"gateway.yaml": "{"}})[1] == "GatewayConfigInvalidEdit"


def test_the_operator_holds_what_the_gateway_role_grants() -> None:
    """Kubernetes refuses a Role granting more than its creator holds (RBAC escalation check)."""
    for wanted in DISCOVERY_RULES:
        assert any(set(wanted["apiGroups"]) <= set(r["apiGroups"]) and set(wanted["resources"]) <= set(r["resources"])
                   and set(wanted["verbs"]) <= set(r["verbs"]) for r in cluster_rules())


def test_kubellm_status_shows_the_gateway_and_the_client_url() -> None:
    from kubellm.operator.cli import _status_text

    state = {"phase": "Available", "gateway": {"ready": True, "readyReplicas": 2, "replicas": 2, "url": "https://llm.example.com/v1"}}
    assert "  gateway: ready (2/2 pods); clients use https://llm.example.com/v1" in _status_text("chat", 1, state).splitlines()
    assert "NOT READY (0/0 pods)" in _status_text("chat", 1, {"gateway": {"ready": False, "url": "u"}})


def test_the_operator_options_set_the_gateway() -> None:
    from kubellm.operator.cli import gateway_settings
    from kubellm.operator.gatewayflags import AutoscaleOn, GatewayFlags

    assert gateway_settings("r/kubellm:1", GatewayFlags(deploy=False, replicas=3)) is None
    flags = GatewayFlags(replicas=3, max_replicas=7, autoscale_on=AutoscaleOn.in_flight, cpu="250m", memory="256Mi",
                         drain_seconds=0, target_cpu_percent=50, target_in_flight=8, prometheus_namespace="obs")
    settings = gateway_settings("r/kubellm:1", flags)
    assert settings is not None
    assert (settings.image, settings.replicas, settings.max_replicas, settings.autoscale_on) == ("r/kubellm:1", 3, 7, "inFlight")
    assert (settings.cpu, settings.memory, settings.drain_seconds) == ("250m", "256Mi", 0)
    assert (settings.target_cpu_percent, settings.target_in_flight, settings.prometheus_namespace) == (50, 8, "obs")
    defaults = gateway_settings("r/kubellm:1", GatewayFlags())
    assert defaults is not None and (defaults.replicas, defaults.autoscale_on, defaults.cpu) == (2, "cpu", "1")


def _operator_app() -> typer.Typer:
    """The operator component's commands on an app of their own, as `kubellm` registers them."""
    from kubellm.operator import cli as operator_cli

    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    operator_cli.register(app)
    return app


def test_install_writes_the_gateway_flags_into_the_operator_deployment_and_the_operator_parses_them() -> None:
    """`kubellm install --gateway-*` (a dry run, as a user types it) puts the flags in the
    operator's args; the real `kubellm operator` parser turns them back into the settings."""
    import yaml
    from typer.testing import CliRunner

    from kubellm.operator import cli as operator_cli

    app = _operator_app()
    result = CliRunner().invoke(app, ["install", "--dry-run", "--gateway-cpu=250m", "--gateway-memory=256Mi",
                                      "--gateway-drain-seconds=10", "--gateway-autoscale-on=none", "--gateway-replicas=2"])
    assert result.exit_code == 0, result.output
    deployment = next(d for d in yaml.safe_load_all(result.output) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[2:] == ["--gateway-replicas=2", "--gateway-autoscale-on=none", "--gateway-cpu=250m",
                        "--gateway-memory=256Mi", "--gateway-drain-seconds=10"]
    command = typer.main.get_command(app).commands["operator"]  # type: ignore[attr-defined]
    params = command.make_context("operator", args[1:]).params
    settings = operator_cli.gateway_settings("r/kubellm:1", operator_cli._gateway_flags(params))
    assert settings is not None and (settings.cpu, settings.memory, settings.drain_seconds, settings.autoscale_on) == (
        "250m", "256Mi", 10, "none")


@pytest.mark.parametrize(("flag", "named"), [("--gateway-cpu=lots", "--gateway-cpu='lots'"),
                                              ("--gateway-memory=1 GB", "--gateway-memory='1 GB'")])
def test_install_refuses_a_bad_gateway_value_naming_the_flag(flag: str, named: str) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(_operator_app(), ["install", "--dry-run", flag])
    assert result.exit_code == 1
    assert named in str(result.exception) + result.output
