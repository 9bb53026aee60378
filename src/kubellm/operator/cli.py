"""Commands of kubellm.operator: `operator`, `install`, `apply`, `status`, `delete`, `doctor`.

Arguments are parsed and results printed here; the work is in ``commands``, ``runner`` and
``doctor``. Exit codes: 0 ok, 1 the cluster refused or is unreachable, 2 an invalid spec,
3 doctor found a blocking problem (all in docs/errors.md; errors are printed by
``kubellm.cli.errors``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import yaml

from kubellm.operator import gatewayflags as gw
from kubellm.operator.gatewayflags import AutoscaleOn as AutoscaleOn  # re-exported: the enum of --gateway-autoscale-on
from kubellm.operator.gatewayflags import GatewayFlags
from kubellm.operator.reconcile import Renderer
from kubellm.spec import SpecError, load_spec

if TYPE_CHECKING:
    from kubellm.render.gateway import GatewaySettings
    from kubellm.render.images import Images

T = TypeVar("T")


EXIT_SPEC, EXIT_DOCTOR = 2, 3

KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file.")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context (default: its current-context).")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the kubeconfig's).")]
# One setting names kubellm's image everywhere (kubellm.render.images); the operator reads
# it from the environment its Deployment sets (`kubellm install` writes it there).
ImageOpt = Annotated[str | None, typer.Option(
    "--image", envvar="KUBELLM_IMAGE", help="kubellm's image: operator, loader, simulator engines, gateway.")]
LlamacppImageOpt = Annotated[str | None, typer.Option(
    "--llamacpp-image", envvar="KUBELLM_LLAMACPP_IMAGE", help="The llama.cpp engine's image.")]


def _images(image: str | None, llamacpp_image: str | None) -> Images:
    from kubellm.render.images import images_from  # imported late: the CLI starts without it

    return images_from(image, llamacpp_image)


def _renderer(images: Images) -> Renderer:
    from kubellm.render import render  # imported late: the CLI starts without it

    return lambda service, target: render(service, target, images)


def _run(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run *action*; its OperatorError (exit 1) and SpecError (exit 2) are reported by the
    command line's error edge (kubellm.cli.errors), with the traceback under --debug."""
    return asyncio.run(action())


def gateway_settings(image: str, flags: GatewayFlags) -> GatewaySettings | None:
    """The operator's gateway settings from its options (None: deploy no gateway)."""
    settings: GatewaySettings | None = flags.settings(image)
    return settings


def _print_event(kind: str, reason: str, message: str) -> None:
    typer.echo(f"{kind} {reason}: {message}", err=True)


def _gateway_flags(options: dict[str, Any]) -> GatewayFlags:
    """The --gateway-* options of a command (its locals) as GatewayFlags."""
    given = {name.removeprefix("gateway_"): value for name, value in options.items() if name.startswith("gateway_")}
    return GatewayFlags(deploy=options["gateway"], **given)


def operator(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: Annotated[list[str] | None, typer.Option("--watch-namespace", help="Serve only these namespaces.")] = None,
    resync: Annotated[float, typer.Option(help="Seconds between re-checks of each LLMService.")] = 10.0,
    leader_election: Annotated[bool, typer.Option(help="Lead through a Lease so replicas never fight.")] = True,
    lease_namespace: Annotated[str | None, typer.Option(help="Namespace of the Lease.")] = None,
    lease_seconds: Annotated[int, typer.Option(help="Lease duration.")] = 15,
    identity: Annotated[str | None, typer.Option(help="Lease holder identity (default: $POD_NAME or host-pid).")] = None,
    image: ImageOpt = None,
    llamacpp_image: LlamacppImageOpt = None,
    gateway: gw.DeployOpt = True,
    gateway_replicas: gw.ReplicasOpt = None,
    gateway_max_replicas: gw.MaxReplicasOpt = None,
    gateway_autoscale_on: gw.AutoscaleOnOpt = None,
    gateway_target_cpu_percent: gw.TargetCpuOpt = None,
    gateway_target_in_flight: gw.TargetInFlightOpt = None,
    gateway_cpu: gw.CpuOpt = None,
    gateway_memory: gw.MemoryOpt = None,
    gateway_drain_seconds: gw.DrainOpt = None,
    gateway_prometheus_namespace: gw.PrometheusNsOpt = None,
) -> None:
    """Run the LLMService operator (kopf) until SIGTERM/SIGINT."""
    from kubellm.operator.runner import run_operator
    from kubellm.operator.settings import OperatorSettings
    images = _images(image, llamacpp_image)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("httpx", "httpx2", "httpcore"):  # one line per API request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's login reads it from the environment
    fields: dict[str, Any] = dict(
        kubeconfig=kubeconfig, context=context, namespaces=tuple(namespace or ()), resync_seconds=resync,
        leader_election=leader_election, lease_namespace=lease_namespace, lease_seconds=lease_seconds,
        gateway=gateway_settings(images.kubellm, _gateway_flags(locals())),
    )
    if identity:
        fields["identity"] = identity
    settings = OperatorSettings(**fields)
    render = _renderer(images)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_operator(settings, render, stop)

    _run(main)


def install(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the operator.")] = "kubellm-system",
    image: Annotated[str | None, typer.Option(
        "--image", help="kubellm's image: the operator runs it and renders it into what it deploys.")] = None,
    llamacpp_image: Annotated[str | None, typer.Option(
        "--llamacpp-image", help="The llama.cpp engine's image the operator renders.")] = None,
    replicas: Annotated[int, typer.Option(help="Operator replicas (one leads).")] = 2,
    crd_only: Annotated[bool, typer.Option("--crd-only", help="Install only the LLMService CRD.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests instead.")] = False,
    gateway: gw.DeployOpt = True,
    gateway_replicas: gw.ReplicasOpt = None,
    gateway_max_replicas: gw.MaxReplicasOpt = None,
    gateway_autoscale_on: gw.AutoscaleOnOpt = None,
    gateway_target_cpu_percent: gw.TargetCpuOpt = None,
    gateway_target_in_flight: gw.TargetInFlightOpt = None,
    gateway_cpu: gw.CpuOpt = None,
    gateway_memory: gw.MemoryOpt = None,
    gateway_drain_seconds: gw.DrainOpt = None,
    gateway_prometheus_namespace: gw.PrometheusNsOpt = None,
) -> None:
    """Install the LLMService CRD, the operator's least-privilege RBAC and its Deployment."""
    # The --gateway-* flags become the operator's: each namespace's gateway runs with them.
    from kubellm.operator import commands
    from kubellm.operator.install import manifests

    images = _images(image, llamacpp_image)
    flags = _gateway_flags(locals())
    gateway_settings(images.kubellm, flags)  # a refused value stops here, not in the operator's pods
    operator_args = flags.args()
    if dry_run:
        docs = manifests(namespace, images, replicas, operator_args)
        typer.echo(yaml.safe_dump_all(docs[:1] if crd_only else docs, sort_keys=False), nl=False)
        return

    async def main() -> list[str]:
        from kubellm.operator.kube import Kube

        async with Kube.connect(kubeconfig, context) as kube:
            return await commands.install(kube, namespace, images, replicas, operator_args, operator=not crd_only)

    for line in _run(main):
        typer.echo(f"applied {line}")


def apply(
    spec: Annotated[Path, typer.Argument(help="LLMService YAML file.")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    resource: Annotated[
        bool, typer.Option("--resource", help="Apply the LLMService object for the operator instead of its rendered objects.")
    ] = False,
    image: ImageOpt = None,
    llamacpp_image: LlamacppImageOpt = None,
) -> None:
    """Server-side apply SPEC: its rendered objects (no operator needed), or with --resource
    the LLMService object itself."""
    from kubellm.operator import commands
    from kubellm.operator.kube import Kube

    try:
        service = load_spec(spec)
    except SpecError as exc:
        typer.echo(f"{spec}: invalid LLMService\n{exc}", err=True)
        raise typer.Exit(EXIT_SPEC) from exc
    images = _images(image, llamacpp_image)

    async def main() -> str:
        async with Kube.connect(kubeconfig, context) as kube:
            ns = namespace or service.metadata.namespace or kube.namespace
            if resource:
                await commands.apply_resource(kube, service, ns)
                return f"applied LLMService {ns}/{service.name}"
            result = await commands.apply_direct(kube, service, ns, _renderer(images), _print_event)
            pruned = f", pruned {len(result.pruned)}" if result.pruned else ""
            return f"applied {result.applied} objects of {ns}/{service.name}{pruned}"

    typer.echo(_run(main))


def status(
    name: Annotated[str, typer.Argument(help="LLMService name.")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Show an LLMService's phase, conditions, ready replicas per role and URL."""
    from kubellm.operator import commands
    from kubellm.operator.kube import Kube

    async def main() -> tuple[dict[str, Any], list[Any]]:
        async with Kube.connect(kubeconfig, context) as kube:
            ns = namespace or kube.namespace
            found = await commands.get_service(kube, name, ns)
            if found is None:
                raise await commands.why_missing(kube, name, ns)
            return found, await commands.pod_failures(kube, ns, {"kubellm.dev/service": name})

    found, failed = _run(main)
    state = found.get("status") or {}
    if output == "json":
        pods = [{**f.__dict__, "hint": f.hint} for f in failed]
        typer.echo(json.dumps({"name": name, "generation": found["metadata"].get("generation"), "status": state, "failing": pods}, indent=2))
        return
    typer.echo(_status_text(name, found["metadata"].get("generation"), state))
    for failure in failed:
        typer.echo("\n".join(f"  {line}" for line in failure.lines()))


def _status_text(name: str, generation: object, state: dict[str, Any]) -> str:
    lines = [
        f"{name}: {state.get('phase', 'Unknown')} (generation {generation}, observed {state.get('observedGeneration', '-')})",
        f"  url: {state.get('serviceUrl', '-')}",
    ]
    gateway = state.get("gateway")
    if isinstance(gateway, dict):
        lines.append(f"  gateway: {'ready' if gateway.get('ready') else 'NOT READY'} ({gateway.get('readyReplicas', 0)}/"
                     f"{gateway.get('replicas', 0)} pods); clients use {gateway.get('url')}")
    for role, counts in (state.get("roles") or {}).items():
        lines.append(f"  role {role}: {counts.get('ready', 0)}/{counts.get('desired', 0)} ready")
    canary = state.get("canary")
    if isinstance(canary, dict):
        steps = canary.get("steps") or []
        lines.append(f"  canary {canary.get('uri')}: {canary.get('weight', 0)}% of requests, {canary.get('phase')}"
                     + (f" (step {int(canary.get('step', 0)) + 1}/{len(steps)})" if steps else ""))
    for c in state.get("conditions") or []:
        lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message')}")
    return "\n".join(lines)


def delete(
    name: Annotated[str, typer.Argument(help="LLMService name.")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait until every object is gone.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 120.0,
) -> None:
    """Delete an LLMService and everything created for it (a retained cache claim stays)."""
    from kubellm.operator import commands
    from kubellm.operator.kube import Kube

    async def main() -> list[str]:
        async with Kube.connect(kubeconfig, context) as kube:
            ns = namespace or kube.namespace
            deleted = await commands.delete_service(kube, name, ns, wait=wait, timeout=timeout)
            if not deleted:
                raise await commands.why_nothing_deleted(kube, name, ns)
            return deleted

    deleted = _run(main)
    typer.echo(f"deleted {', '.join(deleted)}")


def doctor(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="Also check that this LLMService fits.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Check a live cluster for what an LLMService needs (GPUs, device plugin, CRDs, storage,
    version, quota) and say what is missing. Exit 3 when something blocks."""
    from kubellm.operator.doctor import assess, gather
    from kubellm.operator.kube import Kube

    async def main() -> list[Any]:
        service = load_spec(spec) if spec else None
        async with Kube.connect(kubeconfig, context) as kube:
            facts = await gather(kube, namespace or kube.namespace)
        return assess(facts, service)

    findings = _run(main)
    if output == "json":
        typer.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for f in findings:
            typer.echo(f"{marks[f.level]} {f.check}: {f.message}")
    if any(f.level == "fail" for f in findings):
        raise typer.Exit(EXIT_DOCTOR)


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("operator")(operator)
    app.command("install")(install)
    app.command("apply")(apply)
    app.command("status")(status)
    app.command("delete")(delete)
    app.command("doctor")(doctor)
