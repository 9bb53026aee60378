"""The target Kubernetes version: parsed strictly, supported from 1.29, gating image volumes."""

from __future__ import annotations

import pytest

from kubellm.render import TargetVersionError, render
from kubellm.spec import LLMService, SpecError


@pytest.mark.parametrize("version", ["1.28", "2.0", "abc", "1"])
def test_unsupported_or_malformed_targets_are_refused(version: str, example_specs: dict[str, LLMService]) -> None:
    with pytest.raises(TargetVersionError):
        render(example_specs["quickstart"], version)


@pytest.mark.parametrize("version", ["1.29", "v1.30", "1.31.2", "1.33"])
def test_supported_targets_render(version: str, example_specs: dict[str, LLMService]) -> None:
    assert render(example_specs["quickstart"], version)


def test_image_volume_needs_1_31(example_specs: dict[str, LLMService]) -> None:
    with pytest.raises(SpecError) as info:
        render(example_specs["oci-image-volume"], "1.30")
    assert info.value.paths == ("spec.cache.kind",)
    objects = render(example_specs["oci-image-volume"], "1.31")
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    image_volumes = [v for v in pod["volumes"] if "image" in v]
    assert image_volumes[0]["image"]["reference"] == "registry.example.com/models/phi-3-mini-4k-instruct:v1"
    assert not any(o["kind"] in ("Job", "PersistentVolumeClaim") for o in objects)
