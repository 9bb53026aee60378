"""doctor's precise-routing check over what kubellm really renders: engines and gateway hash
KV blocks alike as rendered; an engine whose extraArgs or env change the algorithm, seed or
block size (here: edited in the rendered Deployment), or that publishes no events, fails the check naming the Deployment and both sides."""

from __future__ import annotations

from typing import Any

import yaml

from kubellm.gateway.fromspec import gateway_configmap
from kubellm.operator.kvhashdoctor import kv_hash_checks
from kubellm.render import render
from kubellm.spec import parse_spec


def _facts(precise: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    spec: dict[str, Any] = {"model": {"uri": "sim://tiny-chat"}, "engine": {"kind": "sim"}}
    if precise is not None:
        spec["routing"] = {"precisePrefix": precise}
    svc = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                      "metadata": {"name": "chat", "namespace": "team"}, "spec": spec})
    engines = [o for o in render(svc) if o["kind"] == "Deployment"]
    return yaml.safe_load(gateway_configmap("team", [svc])["data"]["gateway.yaml"]), engines


def test_as_rendered_engines_and_gateway_agree() -> None:
    (check,) = kv_hash_checks(*_facts(precise={"hashAlgo": "sha256_cbor", "hashSeed": "7"}))
    assert check[:2] == ("gateway-kv-hashing", "ok") and "1 engine" in check[2]


def test_without_precise_routing_there_is_nothing_to_check() -> None:
    assert kv_hash_checks(*_facts()) == []


def test_a_disagreeing_engine_fails_naming_both_sides() -> None:
    config, engines = _facts(precise={"hashSeed": "7"})
    env = engines[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    for e in env:
        if e["name"] == "PYTHONHASHSEED":
            e["value"] = "8"
    ((name, level, message),) = kv_hash_checks(config, engines)
    assert (name, level) == ("gateway-kv-hashing", "fail")
    assert "chat hashes blocks with sha256, PYTHONHASHSEED 8" in message and "PYTHONHASHSEED 7" in message


def test_an_engine_without_events_fails() -> None:
    config, engines = _facts(precise={})
    container = engines[0]["spec"]["template"]["spec"]["containers"][0]
    i = container["args"].index("--kv-events-config")
    del container["args"][i:i + 2]
    ((_, level, message),) = kv_hash_checks(config, engines)
    assert level == "fail" and "publishes no KV events" in message
