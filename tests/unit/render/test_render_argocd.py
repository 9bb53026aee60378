"""The Argo CD Application and sync waves (`kubellm render --argocd`): waves follow apply
order, and ignoreDifferences names exactly what another controller owns."""

from __future__ import annotations

import pytest

from kubellm.gateway.fromspec import gateway_configmaps
from kubellm.render.errors import ArgoCdSourceError
from kubellm.render.order import apply_order
from kubellm.render.targets.argocd import WAVE, application, with_waves
from kubellm.render.targets.command import check_source
from kubellm.render.targets.select import render_target
from kubellm.spec import parse_spec

REPO = "https://git.example.com/platform/llm.git"


def argo_canary(**scaling: object) -> list[dict[str, object]]:
    spec = parse_spec({"apiVersion": "kubellm.dev/v1alpha1", "kind": "LLMService", "metadata": {"name": "chat", "namespace": "llm"},
                       "spec": {"model": {"uri": "sim://m"}, "engine": {"kind": "sim"}, "scaling": scaling,
                                "rollout": {"strategy": "argoCanary", "canary": {"steps": [10, 100]}}}})
    return render_target(spec).objects + gateway_configmaps([spec])


def test_waves_rise_with_apply_order_and_start_at_zero() -> None:
    objects = with_waves(apply_order(argo_canary()))
    waves = [int(o["metadata"]["annotations"][WAVE]) for o in objects]
    assert waves[0] == 0 and waves == sorted(waves)
    kinds = [o["kind"] for o in objects]
    assert waves[kinds.index("ServiceAccount")] < waves[kinds.index("Service")] < waves[kinds.index("Rollout")]


def test_autoscaled_rollout_replicas_and_the_operators_config_are_ignored() -> None:
    app = application(argo_canary(minReplicas=1, maxReplicas=4), REPO, "apps/chat", "chat")
    assert app["spec"]["ignoreDifferences"] == [
        {"group": "argoproj.io", "jsonPointers": ["/spec/replicas"], "kind": "Rollout", "name": "chat", "namespace": "llm"},
        {"group": "", "jsonPointers": ["/data"], "kind": "ConfigMap", "name": "kubellm-gateway", "namespace": "llm"}]
    assert app["spec"]["destination"] == {"namespace": "llm", "server": "https://kubernetes.default.svc"}


def test_fixed_replicas_leave_nothing_but_the_config_ignored() -> None:
    app = application(argo_canary(), REPO, "apps/chat", "chat")
    assert [d["kind"] for d in app["spec"]["ignoreDifferences"]] == ["ConfigMap"]


@pytest.mark.parametrize(("repo", "path"), [("ftp://x/y", "apps"), ("git.example.com/repo", "apps"),
                                            (REPO, "/abs/path"), (REPO, "apps/../../etc"), (REPO, "")])
def test_sources_argo_cd_cannot_read_are_refused(repo: str, path: str) -> None:
    with pytest.raises(ArgoCdSourceError, match="--argocd"):
        check_source(repo, path)


@pytest.mark.parametrize("repo", [REPO, "ssh://git@git.example.com/platform/llm.git", "git@github.com:org/llm.git"])
def test_git_urls_argo_cd_reads_are_accepted(repo: str) -> None:
    check_source(repo, "clusters/prod/llm")
