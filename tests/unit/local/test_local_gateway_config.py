"""The gateway config local mode derives from a spec: routing, auth, scale from zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.local.errors import LocalError
from kubellm.gateway.fromspec import scorer_type
from kubellm.local.gateway_link import gateway_config_for
from kubellm.spec import LLMService, load_spec_text

BASE = "apiVersion: kubellm.dev/v1alpha1\nkind: LLMService\nmetadata: {name: g}\nspec:\n" \
       "  model: {uri: 'sim://m'}\n  engine: {kind: sim}\n"


def _service(extra: str = "") -> LLMService:
    return load_spec_text(BASE + extra)


@pytest.mark.parametrize(("name", "plugin"), [("prefixCache", "prefix-affinity"), ("queueDepth", "queue-depth"),
                                              ("kvCacheUsage", "kv-cache-usage"), ("loraAffinity", "lora-affinity"),
                                              ("sessionAffinity", "session-affinity"), ("session", "session-affinity")])
def test_scorer_names_map_to_gateway_plugins(name: str, plugin: str) -> None:
    assert scorer_type(name) == plugin


def test_default_spec_uses_the_default_profile_and_no_auth() -> None:
    config = gateway_config_for(_service(), None)
    (model,) = config.models
    assert (model.name, model.profile, model.scale_from_zero, model.endpoints) == ("m", "default", False, ())
    assert config.auth.api_keys_file is None


def test_scorer_weights_become_a_profile() -> None:
    config = gateway_config_for(_service("  routing: {scorers: {prefixCache: 3, queueDepth: 2}}\n"), None)
    assert config.models[0].profile == "spec"
    assert {(s.type, s.weight) for s in config.profiles["spec"].scorers} == {("prefix-affinity", 3), ("queue-depth", 2)}


def test_unknown_scorer_is_named() -> None:
    with pytest.raises(LocalError, match=r"spec.routing.scorers.fancy is not a gateway scorer \(known: .*queueDepth"):
        gateway_config_for(_service("  routing: {scorers: {fancy: 1}}\n"), None)


def test_scale_to_zero_turns_on_activation() -> None:
    config = gateway_config_for(_service("  scaling: {scaleToZero: true, maxReplicas: 2}\n"), None)
    assert config.models[0].scale_from_zero


def test_api_keys_need_a_file_locally_and_use_it(tmp_path: Path) -> None:
    service = _service("  security: {apiKeys: {secretRef: {name: s, key: k}}}\n")
    with pytest.raises(LocalError, match=r"Secret s/k.*--api-keys-file"):
        gateway_config_for(service, None)
    keys = tmp_path / "keys"
    keys.write_text("team-a:sk-123\n")
    assert gateway_config_for(service, keys).auth.api_keys_file == keys
