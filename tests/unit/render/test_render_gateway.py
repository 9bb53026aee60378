"""The namespace gateway's objects (render/gateway.py, gateway_network.py): what the
Deployment runs is what `kubellm gateway` accepts (parsed by the real CLI parser), the files
it reads are where the generated config points, the RBAC is discovery's only, and every
object validates strictly against Kubernetes 1.31 (PodMonitor: the vendored CRD)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from kubellm.gateway import cli as gateway_cli
from kubellm.gateway.fromspec import gateway_config, gateway_configmap
from kubellm.render.gateway import CONFIG_PATH, KEYS_DIR, LABELS, GatewaySettings, gateway_objects
from kubellm.spec import LLMService, parse_spec
from tests.unit.render.test_render_kubernetes_schemas import crd_validator

ROOT = Path(__file__).resolve().parents[3]


def spec(name: str, **extra: Any) -> LLMService:
    body: dict[str, Any] = {"model": {"uri": f"sim://{name}-model"}, "engine": {"kind": "sim"}, **extra}
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": name, "namespace": "team"}, "spec": body})


KEYED = spec("keyed", security={"apiKeys": {"secretRef": {"name": "team-keys", "key": "keys"}}})
PLAIN = spec("plain", observability={"otelEndpoint": "http://otel.observability:4317"})


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {o["kind"]: o for o in objects}
    assert len(out) == len(objects), "one object per kind"
    return out


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec_: dict[str, Any] = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    return spec_


def parse_gateway_args(args: list[str]) -> dict[str, Any]:
    """The parameters `kubellm gateway` would run with, from the real command's parser."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    gateway_cli.register(app)
    group = typer.main.get_command(app)
    command = group.commands[args[0]]  # type: ignore[attr-defined]
    params: dict[str, Any] = command.make_context(args[0], list(args[1:])).params
    return params


def test_every_object_of_the_gateway_is_rendered() -> None:
    kinds = sorted(o["kind"] for o in gateway_objects("team", [KEYED, PLAIN]))
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "PodMonitor",
                     "Role", "RoleBinding", "Service", "ServiceAccount"]
    assert all(o["metadata"]["namespace"] == "team" and o["metadata"]["name"] == "kubellm-gateway"
               for o in gateway_objects("team", [KEYED]))


def test_the_container_runs_a_command_line_the_gateway_cli_accepts() -> None:
    container = pod_spec(gateway_objects("team", [PLAIN], GatewaySettings(port=9090)))["containers"][0]
    assert container["command"] == ["kubellm"]
    params = parse_gateway_args(container["args"])
    assert Path(params["config"]) == Path(CONFIG_PATH)  # click gives str or Path by version
    assert params["host"] == "0.0.0.0" and params["port"] == 9090
    assert container["ports"] == [{"containerPort": 9090, "name": "http", "protocol": "TCP"}]


def test_config_and_keys_are_mounted_where_the_generated_config_reads_them() -> None:
    config = gateway_config([KEYED], "team")
    assert inspect.signature(gateway_config).parameters["keys_dir"].default == KEYS_DIR
    assert config["auth"]["apiKeysFile"] == f"{KEYS_DIR}/keyed"
    objects = gateway_objects("team", [KEYED, PLAIN])
    mounts = {m["name"]: m["mountPath"] for m in pod_spec(objects)["containers"][0]["volumeMounts"]}
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "config")
    files = {}
    for source in volume["projected"]["sources"]:
        kind = "configMap" if "configMap" in source else "secret"
        for item in source[kind]["items"]:
            files[f"{mounts['config']}/{item['path']}"] = (kind, source[kind]["name"], item["key"], source[kind].get("optional"))
    configmap = gateway_configmap("team", [KEYED, PLAIN])
    assert files[CONFIG_PATH] == ("configMap", configmap["metadata"]["name"], "gateway.yaml", None)
    assert "gateway.yaml" in configmap["data"]
    # optional: a missing Secret must not keep every gateway pod from starting
    assert files[config["auth"]["apiKeysFile"]] == ("secret", "team-keys", "keys", True)


def test_probes_drain_replicas_and_spread() -> None:
    settings = GatewaySettings(drain_seconds=20)
    objects = gateway_objects("team", [PLAIN], settings)
    pod = pod_spec(objects)
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod["terminationGracePeriodSeconds"] == 5 + 20 + 5
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    kinds = by_kind(objects)
    assert "replicas" not in kinds["Deployment"]["spec"]  # the HPA owns it, from its minimum
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    assert kinds["Deployment"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    fixed = by_kind(gateway_objects("team", [PLAIN], GatewaySettings(autoscale_on="none", replicas=3)))
    assert fixed["Deployment"]["spec"]["replicas"] == 3 and "HorizontalPodAutoscaler" not in fixed
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"  # as the engines speak to the same collector
    assert "lifecycle" not in pod_spec(gateway_objects("team", [PLAIN], target=(1, 29)))["containers"][0]


def test_in_flight_autoscaling_targets_the_gateway_metric() -> None:
    hpa = by_kind(gateway_objects("team", [PLAIN], GatewaySettings(autoscale_on="inFlight", target_in_flight=32)))
    metric = hpa["HorizontalPodAutoscaler"]["spec"]["metrics"][0]
    assert metric["pods"]["metric"]["name"] == "kubellm_requests_in_flight"
    assert metric["pods"]["target"]["averageValue"] == "32"
    rules = next(o for o in gateway_objects("team", [PLAIN], GatewaySettings(autoscale_on="inFlight"))
                 if o["kind"] == "ConfigMap")
    [rule] = yaml.safe_load(rules["data"]["rules.yaml"])["rules"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"] and rule["seriesQuery"].startswith("kubellm_requests_in_flight{")
    assert not [o for o in gateway_objects("team", [PLAIN]) if o["kind"] == "ConfigMap"]  # CPU needs no rule


def test_the_role_grants_discovery_only_and_no_token_is_automounted() -> None:
    objects = by_kind(gateway_objects("team", [PLAIN]))
    assert objects["Role"]["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
    assert objects["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "kubellm-gateway", "namespace": "team"}]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and objects["ServiceAccount"]["automountServiceAccountToken"] is False
    token = next(v for v in pod["volumes"] if v["name"] == "kube-api-access")
    assert {next(iter(s)) for s in token["projected"]["sources"]} == {"serviceAccountToken", "configMap", "downwardAPI"}


def test_the_engines_policy_admits_the_gateway_pods() -> None:
    """The engines' NetworkPolicy selects gateway pods by spec.security.networkPolicy.gatewayPodLabels."""
    from kubellm.render import render

    engine_policy = next(o for o in render(PLAIN) if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "plain-engine")
    selectors = [p["podSelector"]["matchLabels"] for p in engine_policy["spec"]["ingress"][0]["from"] if "podSelector" in p]
    assert any(all(LABELS.get(k) == v for k, v in s.items()) for s in selectors)


def test_the_gateway_policy_lets_clients_in_and_reaches_engines_and_the_api_server() -> None:
    routed = spec("routed", exposure={"ingress": {"host": "llm.example.com", "controllerNamespace": "ingress"}},
                  engine={"kind": "sim", "port": 8001})
    policy = by_kind(gateway_objects("team", [routed, PLAIN]))["NetworkPolicy"]["spec"]
    peers = policy["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers if "namespaceSelector" in p}
    assert namespaces == {"ingress", "monitoring"}
    egress_ports = [sorted(p["port"] for p in rule.get("ports", [])) for rule in policy["egress"]]
    assert [443, 6443] in egress_ports and [8000, 8001] in egress_ports and [4317] in egress_ports


@pytest.mark.parametrize("settings", [GatewaySettings(), GatewaySettings(autoscale_on="inFlight")])
def test_every_gateway_object_validates_strictly(settings: GatewaySettings) -> None:
    objects = gateway_objects("team", [KEYED, PLAIN], settings) + [gateway_configmap("team", [KEYED, PLAIN])]
    for obj in objects:
        if obj["kind"] == "PodMonitor":
            errors = sorted(crd_validator(obj).iter_errors(obj), key=str)
            assert not errors, errors[0].message
        else:
            kubernetes_validate.validate(obj, "1.31", strict=True)


def test_render_gateway_flag_emits_config_and_gateway(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kubellm.cli.main import _register_components, app

    _register_components(["render"])
    result = CliRunner().invoke(app, ["render", str(ROOT / "examples" / "quickstart.yaml"), "--gateway"])
    assert result.exit_code == 0, result.output
    kinds = [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(result.stdout) if o]
    assert ("ConfigMap", "kubellm-gateway") in kinds and ("Deployment", "kubellm-gateway") in kinds
    assert ("Deployment", "quickstart") in kinds


def test_the_grace_period_covers_the_drain_of_the_generated_config() -> None:
    """The pod's grace period is computed from drain_seconds; the gateway drains for the
    config's timeouts.drainS. The generated config sets none, so the two defaults must agree."""
    from kubellm.gateway.config import Timeouts

    assert "timeouts" not in gateway_config([PLAIN], "team")
    assert GatewaySettings().drain_seconds == Timeouts().drain_s
    assert GatewaySettings().grace_seconds > Timeouts().drain_s
