"""The gateway config generated from LLMService examples is valid and routes as the specs say."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.gateway.config import parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import gateway_config
from kubellm.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _load(name: str):
    return load_spec(EXAMPLES / f"{name}.yaml")


def test_examples_make_one_valid_config():
    services = [_load(n) for n in ("quickstart", "canary-gateway", "disaggregated")]
    cfg = parse_config(gateway_config(services, "llm"))
    by_name = {m.name: m for m in cfg.models}
    canary = services[1].spec.rollout.canary
    main = by_name[services[1].spec.model.served_name]
    assert main.canary[0].weight == canary.weight
    # the canary pool is its own model but engines serve the main name (clients see one model)
    assert by_name[main.canary[0].model].upstream_name == (canary.served_name or main.name)
    assert by_name[services[2].spec.model.served_name].disaggregation is not None
    assert cfg.kubernetes is not None and cfg.kubernetes.namespace == "llm"


def test_disaggregated_pools_keep_their_own_default_unless_the_spec_names_a_profile():
    """The latency-predicting default learns one pool's TTFT; P/D pools stay on the weighted
    profile (Disaggregation's default) unless the spec routes with a profile of its own."""
    svc = _load("disaggregated")
    pd = parse_config(gateway_config([svc], "llm")).models[0].disaggregation
    assert pd is not None and (pd.prefill_profile, pd.decode_profile) == ("weighted", "weighted")
    named = svc.model_copy(update={"spec": svc.spec.model_copy(update={"routing": svc.spec.routing.model_copy(
        update={"profile": "prefix-hash"})})})
    pd = parse_config(gateway_config([named], "llm")).models[0].disaggregation
    assert pd is not None and (pd.prefill_profile, pd.decode_profile) == ("prefix-hash", "prefix-hash")


def test_routing_scorers_become_a_profile():
    svc = _load("quickstart")
    svc = svc.model_copy(update={"spec": svc.spec.model_copy(update={"routing": svc.spec.routing.model_copy(
        update={"scorers": {"prefixCache": 4, "queueDepth": 1}})})})
    cfg = parse_config(gateway_config([svc], "ns"))
    profile = cfg.all_profiles()[cfg.models[0].profile]
    assert [(s.type, s.weight) for s in profile.scorers] == [("prefix-affinity", 4), ("queue-depth", 1)]
    bad = svc.model_copy(update={"spec": svc.spec.model_copy(update={"routing": svc.spec.routing.model_copy(
        update={"scorers": {"magic": 1}})})})
    with pytest.raises(ConfigError, match="scorers.magic"):
        gateway_config([bad], "ns")


def test_tenant_limits_of_the_keys_become_the_gateways_tenants():
    svc = _load("quickstart")
    keys = {"secretRef": {"name": "keys", "key": "keys"},
            "tenants": [{"name": "team-a", "tokensPerMinute": 100}, {"name": "team-b", "models": ["x"], "requestsPerMinute": 5}]}
    body = svc.to_dict()
    body["spec"].setdefault("security", {})["apiKeys"] = keys
    cfg = parse_config(gateway_config([type(svc).model_validate(body)], "ns"))
    assert [(t.name, t.models, t.rpm, t.tpm) for t in cfg.auth.tenants] == [
        ("team-a", ("*",), None, 100), ("team-b", ("x",), 5, None)]
    assert cfg.auth.api_keys_file == Path("/etc/kubellm/api-keys/quickstart")


def _with_scaling(svc, **update):
    return svc.model_copy(update={"spec": svc.spec.model_copy(update={"scaling": svc.spec.scaling.model_copy(
        update=update)})})


def test_a_model_scaled_from_zero_is_held_as_long_as_its_engine_may_take_to_start():
    """A 70B engine on a new node takes minutes to be Ready (the plan's cold start: 313 s), so
    the gateway's default 2-minute hold would fail the first request; it is held for as long
    as the engine's startup probe lets it start, and only when some model scales to zero."""
    from kubellm.render import render

    svc = _load("quickstart")
    assert "timeouts" not in gateway_config([_with_scaling(svc, scale_to_zero=False)], "ns")
    held = {}
    for kind in ("vllm", "sim"):
        engine = svc.spec.engine.model_copy(update={"kind": kind})
        zero = _with_scaling(svc, scale_to_zero=True)
        zero = zero.model_copy(update={"spec": zero.spec.model_copy(update={"engine": engine})})
        held[kind] = parse_config(gateway_config([zero], "ns")).timeouts.activation_s
        deployment = next(o for o in render(zero, "1.31") if o["kind"] == "Deployment")
        probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
        assert held[kind] == probe["periodSeconds"] * probe["failureThreshold"]
    assert held["vllm"] > 313 > 120 >= held["sim"]
