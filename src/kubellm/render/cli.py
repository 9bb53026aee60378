"""Commands of kubellm.render: `kubellm render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The command edge composes: the gateway's own config for these services (its format is the
# gateway's contract), emitted beside what the pure renderer returns.
from kubellm.gateway.errors import ConfigError
from kubellm.render.context import Obj
from kubellm.render.context import parse_target
from kubellm.render.errors import RenderError
from kubellm.render.exposure import check_unique_hosts
from kubellm.render.images import DEFAULT_IMAGES, Images, images_from
from kubellm.render.order import apply_order
from kubellm.render.output import to_stream, write_directory
from kubellm.render.render import DEFAULT_TARGET, render
from kubellm.render.targets import DEFAULT as KUBERNETES, NAMES as TARGET_NAMES
from kubellm.spec import LLMService, SpecError, load_spec
from kubellm.spec.cli import EXIT_INVALID, report_spec_error


def _load_all(specs: list[Path]) -> list[LLMService]:
    services = []
    for spec in specs:
        try:
            services.append(load_spec(spec))
        except SpecError as exc:
            report_spec_error(spec, exc)
            raise typer.Exit(EXIT_INVALID) from exc
    return services


def namespace_gateways(services: list[LLMService], target: tuple[int, int], images: Images = DEFAULT_IMAGES) -> list[Obj]:
    """Each namespace's gateway with its config, in apply order."""
    from kubellm.gateway.fromspec import DEFAULT_NAMESPACE, gateway_configmaps  # imported only when asked for
    from kubellm.render.gateway import GatewaySettings, gateway_objects

    objects = gateway_configmaps(services)
    for namespace in sorted({s.metadata.namespace or DEFAULT_NAMESPACE for s in services}):
        members = [s for s in services if (s.metadata.namespace or DEFAULT_NAMESPACE) == namespace]
        objects += gateway_objects(namespace, members, GatewaySettings(image=images.kubellm), target=target)
    return apply_order(objects)


ImageOpt = Annotated[str | None, typer.Option(
    "--image", help="kubellm's image (loader, simulator engines, gateway); default: the public one.")]
LlamacppImageOpt = Annotated[str | None, typer.Option(
    "--llamacpp-image", help="The llama.cpp engine's image (one with /app/llama-server); default: the public one.")]
TargetOpt = Annotated[str, typer.Option(
    "--target", help=f"What to render for: {', '.join(TARGET_NAMES)} (see docs/interop.md).")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Refuse (exit 2) when the target cannot express a spec field, instead of warning.")]
ArgoCdOpt = Annotated[tuple[str, str] | None, typer.Option(
    "--argocd", metavar="REPO_URL PATH", help="Also write an Argo CD Application for the -o directory, "
                                              "as committed at PATH in REPO_URL (objects get sync waves).")]


def _check_target_options(target: str, gateway: bool, argocd: tuple[str, str] | None, output: Path | None) -> None:
    if target not in TARGET_NAMES:
        raise typer.BadParameter(f"{target!r} is not a target; use one of: {', '.join(TARGET_NAMES)}", param_hint="--target")
    if target != KUBERNETES and gateway:
        raise typer.BadParameter(f"kubellm's gateway goes with --target {KUBERNETES}", param_hint="--gateway/--gateway-config")
    if argocd is not None and output is None:
        raise typer.BadParameter("needs -o DIR: the directory committed at PATH", param_hint="--argocd")


def _finish(objects: list[Obj], argocd: tuple[str, str] | None) -> list[Obj]:
    """One of each object (services share a KServe runtime), in apply order; with sync waves for Argo CD."""
    from kubellm.render.targets.argocd import with_waves  # imported only when asked for
    from kubellm.render.targets.command import check_source, unique

    objects = unique(objects)
    if argocd is None:
        return objects
    check_source(*argocd)
    return with_waves(objects)


def _render_one(service: LLMService, target: str, version: str, images: Images, strict: bool) -> list[Obj]:
    if target == KUBERNETES:
        return render(service, version, images)
    from kubellm.render.targets.command import render_service  # imported only when asked for

    return render_service(service, target, version, images, strict, lambda line: typer.echo(f"warning: {line}", err=True))


def render_command(
    specs: Annotated[list[Path], typer.Argument(help="LLMService YAML file(s).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write one file per object into this directory.")] = None,
    target_version: Annotated[str, typer.Option(help="Kubernetes version to render for.")] = DEFAULT_TARGET,
    gateway_config: Annotated[bool, typer.Option(
        "--gateway-config", help="Also emit the gateway's config for these services: "
                                 "one ConfigMap kubellm-gateway per namespace.")] = False,
    gateway: Annotated[bool, typer.Option(
        "--gateway", help="Also emit each namespace's gateway: its config and Deployment, Service, "
                          "RBAC, NetworkPolicy, PDB, autoscaler, monitor (what the operator keeps).")] = False,
    image: ImageOpt = None,
    llamacpp_image: LlamacppImageOpt = None,
    target: TargetOpt = KUBERNETES,
    strict: StrictOpt = False,
    argocd: ArgoCdOpt = None,
) -> None:
    """Render LLMServices into Kubernetes objects (YAML to stdout, or files with -o)."""
    _check_target_options(target, gateway or gateway_config, argocd, output)
    services = _load_all(specs)
    objects: list[Obj] = []
    try:
        images = images_from(image, llamacpp_image)
        for spec, service in zip(specs, services, strict=True):
            try:
                objects += _render_one(service, target, target_version, images, strict)
            except SpecError as exc:
                report_spec_error(spec, exc)
                raise typer.Exit(EXIT_INVALID) from exc
        check_unique_hosts(services)
        if gateway:
            objects += namespace_gateways(services, parse_target(target_version), images)
        elif gateway_config:
            from kubellm.gateway.fromspec import gateway_configmaps  # imported only when asked for

            objects += gateway_configmaps(services)
        if target != KUBERNETES or argocd is not None:
            objects = _finish(objects, argocd)
    except (RenderError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    if output is None:
        typer.echo(to_stream(objects), nl=False)
        return
    try:
        paths = write_directory(objects, output)
        if argocd is not None:
            from kubellm.render.targets.command import write_application  # only when asked for

            paths.append(write_application(output, objects, services, *argocd))
    except OSError as exc:
        if exc.filename is not None:
            raise
        # a write that fails (a full disk) names no file; the error edge (kubellm.cli.errors)
        # prints what it names, so name the directory that was being written
        raise OSError(exc.errno, exc.strerror, str(output)) from exc
    typer.echo(f"wrote {len(paths)} objects to {output}", err=True)


def register(app: typer.Typer) -> None:
    """Add this component's commands to *app*."""
    app.command("render")(render_command)
