"""The `kubellm render` edge of the targets: render every service for one target, report
what it could not express, and write the Argo CD Application beside a rendered directory."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from kubellm.render.context import Obj
from kubellm.render.errors import ArgoCdSourceError
from kubellm.render.images import Images
from kubellm.render.order import apply_order
from kubellm.render.output import to_yaml
from kubellm.render.targets.argocd import application, application_name
from kubellm.render.targets.base import check_strict
from kubellm.render.targets.select import render_target
from kubellm.spec import LLMService

APPLICATION_FILE = "argocd-application.yaml"  # not listed in kustomization.yaml: Argo CD itself applies it
# What Argo CD accepts as a Git repository: https://, ssh://, git@host:path (scp form).
_REPO = re.compile(r"^(https?://[^\s/]+/\S+|ssh://\S+|git@[^\s:]+:\S+)$")


def render_service(service: LLMService, target: str, version: str, images: Images, strict: bool,
                   warn: Callable[[str], None]) -> list[Obj]:
    """*service*'s objects for *target*; each field it cannot express is passed to *warn*
    (or, with *strict*, raised as UnexpressibleError before anything is output)."""
    rendered = check_strict(render_target(service, target, version, images), strict)
    for lost in rendered.unexpressed:
        warn(f"{service.metadata.name}: {lost}")
    return rendered.objects


def unique(objects: Sequence[Obj]) -> list[Obj]:
    """*objects* in apply order, each cluster-wide one (a KServe runtime several services
    name) once."""
    found = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
    return apply_order(list(found.values()))


def check_source(repo_url: str, path: str) -> None:
    if not _REPO.match(repo_url):
        raise ArgoCdSourceError(f"--argocd: {repo_url!r} is not a Git repository URL "
                                "(use https://host/org/repo.git, ssh://... or git@host:org/repo.git)")
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise ArgoCdSourceError(f"--argocd: PATH {path!r} must be a relative path inside the repository, "
                                "without '..' (the directory -o writes, as committed there)")


def write_application(directory: Path, objects: list[Obj], services: Sequence[LLMService], repo_url: str,
                      path: str) -> Path:
    """The Application for *directory* (committed at *path*) as a file in it, written whole."""
    app = application(objects, repo_url, path, application_name([s.metadata.name for s in services], path))
    target = directory / APPLICATION_FILE
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(to_yaml(app), encoding="utf-8")
    tmp.replace(target)
    return target
