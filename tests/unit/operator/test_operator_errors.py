"""How the cluster commands explain a failure: which kubeconfig was tried, which request an
API server refused and the RBAC rule that would allow it (table-driven, no cluster: the real
refusals are in tests/e2e/test_cli_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubellm.operator.errors import (
    ClusterUnreachableError,
    Endpoint,
    ForbiddenError,
    ImmutableFieldError,
    KubeApiError,
    KubeconfigError,
    NamespaceMissingError,
    Request,
    UnauthorizedError,
    api_error,
)
from kubellm.operator.kubeconfig import endpoint, load

ENDPOINT = Endpoint(server="https://10.0.0.1:6443", context="prod", user="alice")
GET_SERVICE = Request("get", "llmservices", "kubellm.dev", "team-a")


def _kubeconfig(path: Path, *, current: str | None = "prod") -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "alice", "user": {"token": "t"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "alice", "namespace": "team-a"}},
                     {"name": "dev", "context": {"cluster": "c", "user": "alice"}}],
    }
    if current:
        config["current-context"] = current
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_kubeconfig_gives_the_current_or_the_named_context(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config")
    assert endpoint(load(str(path))) == ENDPOINT
    assert load(str(path), "dev").context_name == "dev"


def test_kubeconfig_is_read_from_the_first_existing_file_of_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _kubeconfig(tmp_path / "config")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{path}")
    assert load(None).context_name == "prod"


@pytest.mark.parametrize(("setup", "context", "words"), [
    (lambda d: d / "absent", None, ["does not exist", "--kubeconfig"]),
    (lambda d: d, None, ["is a directory"]),
    (lambda d: (d / "bad").write_text("a: [") and d / "bad", None, ["not a valid kubeconfig"]),
    (lambda d: _kubeconfig(d / "config"), "staging", ["context 'staging' is not in", "contexts: dev, prod", "--context"]),
    (lambda d: _kubeconfig(d / "config", current=None), None, ["sets no current-context", "--context"]),
])
def test_every_unusable_kubeconfig_says_what_was_tried_and_what_to_do(
    tmp_path: Path, setup: object, context: str | None, words: list[str]
) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(KubeconfigError) as raised:
        load(str(path), context)
    for word in words:
        assert word in str(raised.value)


def test_no_kubeconfig_at_all_names_every_place_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeconfigError) as raised:
        load(None)
    for word in ("~/.kube/config does not exist", "KUBECONFIG is not set", "in-cluster", "--kubeconfig"):
        assert word in str(raised.value)


@pytest.mark.parametrize(("code", "kind", "request_", "error", "words"), [
    (401, "", GET_SERVICE, UnauthorizedError, ["https://10.0.0.1:6443", "'alice'", "context prod", "401 Unauthorized", "refresh"]),
    (403, "llmservices", GET_SERVICE, ForbiddenError,
     ["refused to get llmservices.kubellm.dev in namespace team-a", "'alice'", "a Role in namespace team-a",
      "apiGroups: ['kubellm.dev'], resources: [llmservices], verbs: [get]",
      "kubectl auth can-i get llmservices.kubellm.dev -n team-a"]),
    (403, "", Request("list", "nodes", "", None), ForbiddenError,
     ["refused to list nodes cluster-wide", "a ClusterRole", "kubectl auth can-i list nodes`"]),
    (404, "namespaces", Request("patch", "deployments", "apps", "nope"), NamespaceMissingError,
     ["namespace nope does not exist", "kubectl create namespace nope"]),
    (404, "deployments", Request("get", "deployments", "apps", "nope"), KubeApiError, ["404"]),
    (422, "", Request("patch", "jobs", "batch", "a"), ImmutableFieldError, ["field is immutable"]),
])
def test_a_refusal_maps_to_the_most_specific_error_naming_the_request(
    code: int, kind: str, request_: Request, error: type[KubeApiError], words: list[str]
) -> None:
    mapped = api_error(code, "Reason", "spec.template: field is immutable", kind, request_, ENDPOINT)
    assert type(mapped) is error
    assert mapped.status == code
    for word in words:
        assert word in str(mapped)


@pytest.mark.parametrize(("cause", "hint"), [
    ("ConnectError: [Errno 111] Connect call failed", "is the cluster running? check `kubectl cluster-info`"),
    ("ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "TLS certificate is not trusted"),
])
def test_an_unreachable_server_is_named_with_the_likely_fix(cause: str, hint: str) -> None:
    text = str(ClusterUnreachableError("https://10.0.0.1:6443", cause))
    assert text.startswith(f"cannot reach the Kubernetes API server at https://10.0.0.1:6443 ({cause}); ")
    assert hint in text
