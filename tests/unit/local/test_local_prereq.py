"""Which engine runtime is picked, and the messages when none is installed (lookups injected)."""

from __future__ import annotations

import pytest

from kubellm.local.errors import PrerequisiteError
from kubellm.local.prereq import Lookups, check_vllm, llamacpp_runtime


def _lookups(binaries: set[str] = set(), modules: bool = False, gpu: bool = False) -> Lookups:
    return Lookups(which=lambda name: f"/usr/bin/{name}" if name in binaries else None,
                   has_module=lambda name: modules, has_gpu=lambda: gpu)


@pytest.mark.parametrize(
    ("lookups", "expected"),
    [
        (_lookups(modules=True), "llama-cpp-python"),
        (_lookups(modules=True, binaries={"llama-server"}), "llama-cpp-python"),
        (_lookups(binaries={"llama-server"}), "llama-server"),
    ],
)
def test_llamacpp_runtime(lookups: Lookups, expected: str) -> None:
    assert llamacpp_runtime(lookups) == expected


def test_no_llamacpp_names_the_package_to_install() -> None:
    with pytest.raises(PrerequisiteError, match=r"pip install 'llama-cpp-python\[server\]'.*llama-server"):
        llamacpp_runtime(_lookups())


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        (_lookups(), r"pip install vllm"),
        (_lookups(binaries={"vllm"}), r"needs an NVIDIA GPU.*engine.kind llamacpp"),
    ],
)
def test_vllm_prerequisites(lookups: Lookups, message: str) -> None:
    with pytest.raises(PrerequisiteError, match=message):
        check_vllm(lookups)


def test_vllm_with_binary_and_gpu_passes() -> None:
    check_vllm(_lookups(binaries={"vllm"}, gpu=True))
