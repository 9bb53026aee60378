"""`gateway_configmaps`: the gateway config of a set of services, one ConfigMap per namespace,
valid for the gateway (parse_config) and for Kubernetes (kubernetes-validate, strict)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kubellm.gateway.config import parse_config
from kubellm.gateway.errors import ConfigError
from kubellm.gateway.fromspec import GATEWAY_CONFIG_KEY, GATEWAY_CONFIGMAP, CanaryRoute, gateway_configmaps
from kubellm.spec import LLMService, load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example(name: str, namespace: str | None = None, served: str | None = None) -> LLMService:
    service = load_spec(EXAMPLES / f"{name}.yaml")
    data = service.model_dump(by_alias=True, exclude_none=True)
    if namespace is not None:
        data["metadata"]["namespace"] = namespace
    if served is not None:
        data["spec"]["model"]["servedName"] = served
    return LLMService.model_validate(data)


def test_every_service_of_a_namespace_is_a_model_of_its_gateway() -> None:
    services = [_example("quickstart"), _example("canary-gateway"), _example("disaggregated")]
    [configmap] = gateway_configmaps(services)
    assert configmap["metadata"]["name"] == GATEWAY_CONFIGMAP and configmap["metadata"]["namespace"] == "llm"
    kubernetes_validate.validate(configmap, "1.31", strict=True)
    config = parse_config(yaml.safe_load(configmap["data"][GATEWAY_CONFIG_KEY]))
    served = {m.name for m in config.models}
    assert {s.spec.model.served_name for s in services} <= served
    canary = services[1].spec.rollout.canary
    assert canary is not None
    main = next(m for m in config.models if m.name == services[1].spec.model.served_name)
    assert [(c.model, c.weight) for c in main.canary] == [(f"{main.name}-canary", canary.weight)]
    assert config.kubernetes is not None and config.kubernetes.namespace == "llm"


def test_one_configmap_per_namespace_each_with_only_its_own_models() -> None:
    maps = gateway_configmaps([_example("quickstart", "team-a"), _example("hf-autoscale", "team-b")])
    assert [m["metadata"]["namespace"] for m in maps] == ["team-a", "team-b"]
    models = [[m.name for m in parse_config(yaml.safe_load(c["data"][GATEWAY_CONFIG_KEY])).models] for c in maps]
    assert models == [["tiny-chat"], [_example("hf-autoscale").spec.model.served_name]]


def test_the_same_services_in_any_order_give_the_same_configmap() -> None:
    services = [_example("quickstart"), _example("canary-gateway")]
    assert gateway_configmaps(services) == gateway_configmaps(services[::-1])


def test_two_services_serving_one_model_name_in_a_namespace_are_refused() -> None:
    with pytest.raises(ConfigError, match="both serve model 'tiny-chat'.*servedName"):
        gateway_configmaps([_example("quickstart"), _example("hf-autoscale", "llm", served="tiny-chat")])


def _split(configmap: dict[str, object], service: LLMService) -> tuple[list[tuple[str, float]], set[str]]:
    config = parse_config(yaml.safe_load(configmap["data"][GATEWAY_CONFIG_KEY]))  # type: ignore[index]
    main = next(m for m in config.models if m.name == service.spec.model.served_name)
    return [(c.model, c.weight) for c in main.canary], {m.name for m in config.models}


def test_live_canary_weights_replace_the_specs() -> None:
    """The operator passes the weight it stepped to: 0 keeps the pool but sends it nothing."""
    svc = _example("canary-gateway")
    pool = f"{svc.spec.model.served_name}-canary"
    [stepped] = gateway_configmaps([svc], {svc.metadata.name: CanaryRoute(50, svc.spec.model.served_name)})
    assert _split(stepped, svc) == ([(pool, 50.0)], {svc.spec.model.served_name, pool})
    [waiting] = gateway_configmaps([svc], {svc.metadata.name: CanaryRoute(0, svc.spec.model.served_name)})
    assert _split(waiting, svc) == ([], {svc.spec.model.served_name, pool})
    [none] = gateway_configmaps([svc], {})
    assert _split(none, svc) == ([], {svc.spec.model.served_name})
