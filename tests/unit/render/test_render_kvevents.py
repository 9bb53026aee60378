"""spec.routing.precisePrefix: engines publish KV events and hash blocks as the gateway does,
and the NetworkPolicies open the event port to the gateway only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubellm.gateway.config import parse_config
from kubellm.gateway.fromspec import gateway_config
from kubellm.gateway.scheduling.plugins import RoutingState
from kubellm.gateway.scheduling.scheduler import Scheduler
from kubellm.render import render
from kubellm.render.gateway_network import gateway_egress
from kubellm.spec import LLMService, parse_spec
from kubellm.spec.errors import SpecError


def _svc(engine: dict[str, Any], precise: dict[str, Any] | None, uri: str = "sim://tiny-chat") -> LLMService:
    spec: dict[str, Any] = {"model": {"uri": uri}, "engine": engine}
    if precise is not None:
        spec["routing"] = {"precisePrefix": precise}
    if engine["kind"] == "vllm":
        spec["resources"] = {"accelerator": {"type": "nvidia-l4", "count": 1}, "cpu": "6", "memory": "24Gi"}
    return parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": "chat", "namespace": "llm"}, "spec": spec})


def _engine(svc: LLMService) -> tuple[list[str], dict[str, str], list[dict[str, Any]]]:
    objs = render(svc)
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    (policy,) = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-engine")]
    return c["args"], {e["name"]: e.get("value") for e in c.get("env", [])}, policy["spec"]["ingress"]


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("kind", ["sim", "vllm"])
def test_engines_publish_events_hashed_as_the_gateway_hashes(kind: str) -> None:
    uri = "sim://tiny-chat" if kind == "sim" else "hf://Qwen/Qwen2.5-0.5B-Instruct"
    svc = _svc({"kind": kind}, {"hashAlgo": "xxhash_cbor", "hashSeed": "42", "kvEventsPort": 5600}, uri)
    args, env, ingress = _engine(svc)
    assert json.loads(_after(args, "--kv-events-config")) == {
        "enable_kv_cache_events": True, "publisher": "zmq", "endpoint": "tcp://*:5600", "topic": "kv"}
    assert (_after(args, "--prefix-caching-hash-algo"), _after(args, "--block-size")) == ("xxhash_cbor", "16")
    assert env["PYTHONHASHSEED"] == "42" and env["VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES"] == "1"
    event_rules = [r for r in ingress if r.get("ports") == [{"port": 5600, "protocol": "TCP"}]]
    assert len(event_rules) == 1 and all("podSelector" in peer for peer in event_rules[0]["from"])
    (model,) = parse_config(gateway_config([svc], "llm")).models
    assert (model.kv_events_port, model.kv_hash_algo, model.kv_hash_seed, model.kv_block_size) == \
        (5600, "xxhash_cbor", "42", 16)
    assert model.precise_tokenizer == ("sim" if kind == "sim" else "hf")
    assert any(p["port"] == 5600 for rule in gateway_egress([svc]) for p in rule.get("ports", []))


def test_precise_routing_swaps_the_default_prefix_scorer() -> None:
    config = parse_config(gateway_config([_svc({"kind": "sim"}, {})], "llm"))
    profile = config.all_profiles()[config.models[0].profile]
    assert [s.type for s in profile.scorers][0] == "precise-prefix"
    assert "prefix-affinity" not in [s.type for s in profile.scorers]
    assert profile.scorers[0].params == {"missBlocks": 16}  # a chat's history counts against load
    Scheduler(profile, RoutingState())  # the gateway builds it


def test_without_precise_routing_nothing_changes() -> None:
    args, env, ingress = _engine(_svc({"kind": "sim"}, None))
    assert "--kv-events-config" not in args and "PYTHONHASHSEED" not in env and len(ingress) == 1


def test_unseeded_xxhash_is_a_spec_error_naming_the_fix() -> None:
    with pytest.raises(SpecError, match="PYTHONHASHSEED"):
        _svc({"kind": "sim"}, {"hashAlgo": "xxhash"})
