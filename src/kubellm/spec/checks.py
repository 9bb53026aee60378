"""Rules that span several fields, each a small pure function returning issues.

Paths are absolute and camelCase, as the user wrote them (``spec.engine.tensorParallelSize``).
``check_target`` holds the rules that depend on the target Kubernetes version, which is not
part of the spec; ``render`` and ``kubellm validate --target-version`` call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kubellm.spec.errors import SpecIssue
from kubellm.spec.scaling import Scaling
from kubellm.spec.uri import UriError, parse_model_uri

if TYPE_CHECKING:
    from kubellm.spec.service import LLMServiceSpec

Check = Callable[["LLMServiceSpec"], Iterator[SpecIssue]]


def _accelerators(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.engine.kind == "vllm" and spec.resources.accelerator.count == 0:
        yield SpecIssue(
            "spec.resources.accelerator.count",
            "the vllm engine needs at least one accelerator",
            "set spec.resources.accelerator.count to 1 or more, or use engine.kind llamacpp "
            "(GGUF on CPU) or sim",
        )


def _parallelism(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.serving.mode != "standard":
        return
    engine, gpus = spec.engine, spec.resources.accelerator.count
    needed = engine.tensor_parallel_size * engine.pipeline_parallel_size
    if engine.kind == "vllm" and needed > gpus:
        yield SpecIssue(
            "spec.engine.tensorParallelSize",
            f"tensorParallelSize x pipelineParallelSize = {needed} is larger than the {gpus} "
            "accelerator(s) per pod",
            f"set spec.resources.accelerator.count to {needed}, lower the parallel sizes, or "
            "use serving.mode multinode to span nodes",
        )
    if engine.kind != "vllm" and needed > 1:
        yield SpecIssue(
            "spec.engine.tensorParallelSize",
            f"tensor/pipeline parallelism is a vllm option, not one of {engine.kind}",
            "remove tensorParallelSize and pipelineParallelSize, or use engine.kind vllm",
        )


def _vllm_only(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    engine = spec.engine
    if engine.kind == "vllm":
        return
    for name, value in (("quantization", engine.quantization), ("loraAdapters", engine.lora_adapters)):
        if value:
            yield SpecIssue(
                f"spec.engine.{name}",
                f"{name} is a vllm option; the {engine.kind} engine does not support it",
                f"remove spec.engine.{name} or use engine.kind vllm",
            )


def _model_format(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    if spec.engine.kind == "llamacpp" and spec.model.format != "gguf":
        yield SpecIssue(
            "spec.model.format",
            "the llamacpp engine serves GGUF files only",
            "set spec.model.format to gguf and point spec.model.uri at a .gguf file or repo",
        )
    if spec.engine.kind == "llamacpp" and gguf_file(spec) is None:
        yield SpecIssue(
            "spec.model.allowPatterns",
            "llama.cpp loads one .gguf file, and neither the URI nor allowPatterns names one",
            "point spec.model.uri at a .gguf file, or list the file in spec.model.allowPatterns",
        )
    if spec.model.scheme == "sim" and spec.engine.kind != "sim":
        yield SpecIssue(
            "spec.model.uri",
            "sim:// models exist only in the simulator",
            "set spec.engine.kind to sim, or point spec.model.uri at real weights",
        )


def gguf_file(spec: LLMServiceSpec) -> str | None:
    """The .gguf file llama.cpp loads: the URI's last segment, or the first such allowPattern."""
    last = spec.model.parsed.last_segment
    if last.lower().endswith(".gguf"):
        return last
    return next((p for p in spec.model.allow_patterns if p.lower().endswith(".gguf") and "*" not in p), None)


def _cache(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    kind, scheme = spec.cache.kind, spec.model.scheme
    required = {"image": "oci", "prefilled": "pvc"}
    if kind in required and scheme != required[kind]:
        yield SpecIssue(
            "spec.cache.kind",
            f"cache kind {kind} needs a {required[kind]}:// model URI, not {scheme}://",
            f"use a {required[kind]}:// URI in spec.model.uri, or set spec.cache.kind to pvc",
        )
    if scheme == "pvc" and kind != "prefilled":
        yield SpecIssue(
            "spec.cache.kind",
            "a pvc:// model is already on a claim; it cannot be copied into another cache",
            "remove spec.cache.kind (it defaults to prefilled for pvc:// URIs)",
        )
    if kind == "none" and spec.engine.kind != "sim":
        yield SpecIssue(
            "spec.cache.kind",
            f"the {spec.engine.kind} engine needs weights; cache kind none gives it none",
            "use cache kind pvc, image or prefilled",
        )
    if spec.cache.storage_class and spec.cache.storage_class_name:
        yield SpecIssue(
            "spec.cache.storageClass",
            "storageClass (create one) and storageClassName (use one) are exclusive",
            "keep one of spec.cache.storageClass and spec.cache.storageClassName",
        )


def _scaling_rules(path: str, scaling: Scaling) -> Iterator[SpecIssue]:
    if scaling.max_replicas is not None and scaling.max_replicas < scaling.min_replicas:
        yield SpecIssue(
            f"{path}.maxReplicas",
            f"maxReplicas ({scaling.max_replicas}) is below minReplicas ({scaling.min_replicas})",
            f"set {path}.maxReplicas to {scaling.min_replicas} or more",
        )
    if scaling.scale_to_zero and scaling.backend == "hpa":
        yield SpecIssue(
            f"{path}.scaleToZero",
            "a plain HorizontalPodAutoscaler cannot scale to zero (HPAScaleToZero is an alpha gate)",
            f"set {path}.backend to keda or operator, or scaleToZero to false",
        )


def _scaling(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    yield from _scaling_rules("spec.scaling", spec.scaling)
    for role in ("prefill", "decode"):
        settings = getattr(spec.serving, role)
        if settings is not None:
            yield from _scaling_rules(f"spec.serving.{role}.scaling", settings.scaling)


def _disaggregated(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    serving = spec.serving
    if serving.mode != "disaggregated":
        for role in ("prefill", "decode"):
            if getattr(serving, role) is not None:
                yield SpecIssue(
                    f"spec.serving.{role}",
                    f"{role} settings apply only to serving.mode disaggregated",
                    f"remove spec.serving.{role} or set spec.serving.mode to disaggregated",
                )
        return
    if spec.engine.kind == "llamacpp":
        yield SpecIssue(
            "spec.serving.mode",
            "disaggregated prefill/decode needs KV-cache transfer, which llama.cpp lacks",
            "use engine.kind vllm (or sim for testing), or serving.mode standard",
        )
    for role in ("prefill", "decode"):
        settings = getattr(serving, role)
        if settings is None:
            yield SpecIssue(
                f"spec.serving.{role}",
                f"serving.mode disaggregated needs a {role} role",
                f"add spec.serving.{role} with its scaling and acceleratorCount",
            )
            continue
        gpus = settings.accelerator_count
        gpus = spec.resources.accelerator.count if gpus is None else gpus
        needed = settings.engine.tensor_parallel_size * settings.engine.pipeline_parallel_size
        if spec.engine.kind == "vllm" and needed > gpus:
            yield SpecIssue(
                f"spec.serving.{role}.acceleratorCount",
                f"the {role} role needs {needed} accelerator(s) per pod but has {gpus}",
                f"set spec.serving.{role}.acceleratorCount to {needed} or more",
            )


def _multinode(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    serving, engine = spec.serving, spec.engine
    if serving.mode != "multinode":
        if serving.multinode is not None:
            yield SpecIssue(
                "spec.serving.multinode",
                "multinode settings apply only to serving.mode multinode",
                "remove spec.serving.multinode or set spec.serving.mode to multinode",
            )
        return
    if engine.kind != "vllm":
        yield SpecIssue(
            "spec.serving.mode",
            f"multinode serving runs vLLM on Ray; the {engine.kind} engine cannot",
            "use engine.kind vllm, or serving.mode standard",
        )
        return
    nodes = serving.group.nodes
    total = nodes * spec.resources.accelerator.count
    needed = engine.tensor_parallel_size * engine.pipeline_parallel_size
    if needed != total:
        yield SpecIssue(
            "spec.engine.tensorParallelSize",
            f"tensorParallelSize x pipelineParallelSize = {needed} must equal the group's "
            f"{total} accelerators ({nodes} nodes x {spec.resources.accelerator.count})",
            "typically tensorParallelSize = accelerators per node and pipelineParallelSize = nodes",
        )


def _rollout(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    rollout = spec.rollout
    canary = rollout.canary
    if rollout.strategy == "gatewayCanary":
        if canary is None or canary.uri is None:
            yield SpecIssue(
                "spec.rollout.canary.uri",
                "strategy gatewayCanary needs the canary model's URI",
                "set spec.rollout.canary.uri to the second model version",
            )
    if rollout.strategy != "rollingUpdate" and spec.serving.mode != "standard":
        yield SpecIssue(
            "spec.rollout.strategy",
            f"canary rollouts support serving.mode standard only, not {spec.serving.mode}",
            "use strategy rollingUpdate for disaggregated and multinode services",
        )
    if canary is not None and canary.uri is not None:
        try:
            parse_model_uri(canary.uri)
        except UriError as exc:
            yield SpecIssue("spec.rollout.canary.uri", str(exc), "fix the URI's form")


def _tenants(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    for t_index, tenant in enumerate(spec.security.tenants):
        for s_index, subject in enumerate(tenant.subjects):
            if subject.kind == "ServiceAccount" and subject.namespace is None:
                yield SpecIssue(
                    f"spec.security.tenants.{t_index}.subjects.{s_index}.namespace",
                    "a ServiceAccount subject needs its namespace",
                    "set the subject's namespace (where the ServiceAccount lives)",
                )


def _lora(spec: LLMServiceSpec) -> Iterator[SpecIssue]:
    for index, adapter in enumerate(spec.engine.lora_adapters):
        try:
            parse_model_uri(adapter.uri)
        except UriError as exc:
            yield SpecIssue(f"spec.engine.loraAdapters.{index}.uri", str(exc), "fix the URI's form")


CHECKS: tuple[Check, ...] = (
    _accelerators,
    _parallelism,
    _vllm_only,
    _model_format,
    _cache,
    _scaling,
    _disaggregated,
    _multinode,
    _rollout,
    _lora,
    _tenants,
)


def check_spec(spec: LLMServiceSpec) -> list[SpecIssue]:
    """Every cross-field problem of *spec* (empty when it is consistent)."""
    return [issue for check in CHECKS for issue in check(spec)]


def parse_version(version: str) -> tuple[int, int]:
    major, _, minor = version.lstrip("v").partition(".")
    try:
        return int(major), int(minor.split(".")[0])
    except ValueError as exc:
        raise ValueError(f"target version {version!r} is not of the form 1.31") from exc


def check_target(spec: LLMServiceSpec, target_version: str) -> list[SpecIssue]:
    """Problems that appear only on the given Kubernetes version (ValueError if malformed)."""
    target = parse_version(target_version)
    if spec.cache.kind == "image" and target < (1, 31):
        return [
            SpecIssue(
                "spec.cache.kind",
                f"OCI image volumes need Kubernetes 1.31 or later (target: {target_version})",
                "use --target-version 1.31 or later (and enable the ImageVolume feature gate), "
                "or set spec.cache.kind to pvc to copy the image's files with a loader Job",
            )
        ]
    return []
