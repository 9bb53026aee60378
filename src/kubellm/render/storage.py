"""The weights cache: StorageClass, PersistentVolumeClaim and loader Jobs (`kubellm pull`)."""

from __future__ import annotations

from kubellm.render.commands import Command
from kubellm.render.context import Obj, RenderContext
from kubellm.render.pod import TMP_MOUNT, TMP_VOLUME, container, equal_resources, pod_spec
from kubellm.render.sources import CACHE_MOUNT, CACHE_VOLUME, Source, cache_claim_name
from kubellm.spec.uri import scheme_of

CREDENTIALS_DIR = "/var/run/secrets/kubellm/source"
# One CPU: downloads are network-bound and one core hashes well over 1 GB/s; two would not fit
# beside an engine and the operator on a 2-CPU node (the test cluster's real node is one).
LOADER_RESOURCES = {"cpu": "1", "memory": "4Gi", "ephemeral-storage": "2Gi"}
WAITER_RESOURCES = {"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "16Mi"}

# Credentials are mounted as files, never exposed as environment values. The Secret's keys
# are the variable names `kubellm pull` reads (SourceSettings.from_env), one file each:
# HF_TOKEN; AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
# AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY;
# MLFLOW_TRACKING_TOKEN; KUBELLM_OCI_USERNAME + KUBELLM_OCI_PASSWORD. It reads
# $KUBELLM_CREDENTIALS_DIR/<NAME> for any such variable not set in its environment. Where a
# file is named by a variable, that variable is set too (pull reads HF_TOKEN_PATH itself;
# boto3 reads an AWS `credentials` file, google-auth a service-account `key.json`):
CREDENTIAL_FILES = {
    "hf": (("HF_TOKEN_PATH", "HF_TOKEN"),),  # kubellm pull, as huggingface_hub does
    "s3": (("AWS_SHARED_CREDENTIALS_FILE", "credentials"),),  # boto3, if the Secret has it
    "gs": (("GOOGLE_APPLICATION_CREDENTIALS", "key.json"),),  # google-auth
}


def storage_class(ctx: RenderContext) -> list[Obj]:
    settings = ctx.service.spec.cache.storage_class
    if settings is None:
        return []
    obj: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": cache_claim_name(ctx), "labels": ctx.labels("cache")},
        "provisioner": settings.provisioner,
        "reclaimPolicy": settings.reclaim_policy,
        "volumeBindingMode": settings.volume_binding_mode,
        "allowVolumeExpansion": True,
    }
    if settings.parameters:
        obj["parameters"] = dict(settings.parameters)
    if settings.zones:
        expression = {"key": "topology.kubernetes.io/zone", "values": list(settings.zones)}
        obj["allowedTopologies"] = [{"matchLabelExpressions": [expression]}]
    return [obj]


def cache_claim(ctx: RenderContext) -> Obj:
    cache = ctx.service.spec.cache
    spec: Obj = {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}}}
    class_name = cache_claim_name(ctx) if cache.storage_class else cache.storage_class_name
    if class_name:
        spec["storageClassName"] = class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": ctx.metadata(cache_claim_name(ctx), "cache"),
        "spec": spec,
    }


def _pickle_allowed(ctx: RenderContext, source: Source) -> bool:
    """model.allowPickle covers the main model only (LoRA adapters, canaries: never)."""
    model = ctx.service.spec.model
    return source.uri == model.uri and model.allow_pickle


def pull_command(ctx: RenderContext, source: Source) -> Command:
    model = ctx.service.spec.model
    args = ["pull", source.uri, f"/cache/{source.key}"]
    if source.uri == model.uri:
        args += [arg for p in model.allow_patterns for arg in ("--allow", p)]
        args += [arg for p in model.ignore_patterns for arg in ("--ignore", p)]
    if _pickle_allowed(ctx, source):
        args.append("--allow-pickle")
    env = [("HOME", "/tmp/home"), ("XDG_CACHE_HOME", "/tmp/cache")]
    if ctx.service.spec.model.credentials is not None:
        env.append(("KUBELLM_CREDENTIALS_DIR", CREDENTIALS_DIR))
        env += [(var, f"{CREDENTIALS_DIR}/{file}") for var, file in CREDENTIAL_FILES.get(scheme_of(source.uri), ())]
    return Command(("kubellm",), tuple(args), tuple(env))


def loader_job_name(ctx: RenderContext, source: Source) -> str:
    # The key changes with the URI, so a new model gets a new Job (Job templates are immutable);
    # so does allowPickle, which changes the args (the suffix stays within 63 characters).
    pickle = "-pkl" if _pickle_allowed(ctx, source) else ""
    return f"{ctx.name}-load-{source.key.removeprefix('m-')}{pickle}"


def loader_job(ctx: RenderContext, source: Source) -> Obj:
    credentials = ctx.service.spec.model.credentials
    volumes: list[Obj] = [
        {"name": "cache", "persistentVolumeClaim": {"claimName": cache_claim_name(ctx)}},
        TMP_VOLUME,
    ]
    mounts: list[Obj] = [{"name": "cache", "mountPath": "/cache"}, TMP_MOUNT]
    if credentials is not None:
        volumes.append({"name": "credentials", "secret": {"secretName": credentials.name, "defaultMode": 0o440}})
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
    pull = container("pull", ctx.images.kubellm, pull_command(ctx, source), equal_resources(LOADER_RESOURCES), volumeMounts=mounts)
    template = {
        "metadata": {"labels": ctx.labels("loader")},
        "spec": pod_spec(ctx, [pull], volumes, restartPolicy="OnFailure"),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": ctx.metadata(loader_job_name(ctx, source), "loader", annotations={"kubellm.dev/model-uri": source.uri}),
        "spec": {
            "activeDeadlineSeconds": ctx.service.spec.cache.loader_active_deadline_seconds,
            "backoffLimit": 4,
            "template": template,
        },
    }


def wait_for_weights(ctx: RenderContext, sources: list[Source]) -> list[Obj]:
    """An init container that holds the engine until the loader's atomic commit lands."""
    paths = sorted({s.path for s in sources if s.kind == "cache"})
    if not paths:
        return []
    tests = " && ".join(f"[ -d {p} ]" for p in paths)
    script = f"until {tests}; do echo waiting for model weights in {CACHE_MOUNT}; sleep 10; done"
    mounts = [{"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT, "readOnly": True}]
    return [container("wait-for-weights", ctx.images.kubellm, Command(("sh", "-c"), (script,)), equal_resources(WAITER_RESOURCES), volumeMounts=mounts)]


def storage_objects(ctx: RenderContext, sources: list[Source]) -> list[Obj]:
    cached = {s.key: s for s in sources if s.kind == "cache"}
    if not cached:
        return []
    jobs = [loader_job(ctx, cached[key]) for key in sorted(cached)]
    return storage_class(ctx) + [cache_claim(ctx)] + jobs
