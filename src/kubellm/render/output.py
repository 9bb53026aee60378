"""Serialising rendered objects: one YAML stream, or one file per object. Deterministic."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubellm.render.context import Obj


# libyaml's emitter where installed (about 6x faster); it writes the same bytes as the
# pure-Python one for our documents (the golden files were made with the latter).
class _Dumper(yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper):  # type: ignore[misc]
    """Block-style YAML; multi-line strings (dashboards, rules) as literal blocks; never
    anchors and aliases (kubectl accepts them, but people and some tools do not)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


def to_stream(objects: list[Obj]) -> str:
    return "".join(f"---\n{to_yaml(obj)}" for obj in objects)


def file_name(index: int, obj: Obj) -> str:
    """`NN-kind-name.yaml`: the prefix keeps apply order when a tool applies a directory."""
    return f"{index:02d}-{str(obj['kind']).lower()}-{obj['metadata']['name']}.yaml"


def _write_temporaries(files: dict[Path, str]) -> dict[Path, Path]:
    """Each file's text into a temporary beside it; on any error (a full disk) none is left."""
    temporaries: dict[Path, Path] = {}
    try:
        for path, text in files.items():
            tmp = path.with_name(path.name + ".tmp")
            temporaries[path] = tmp
            tmp.write_text(text, encoding="utf-8")
    except BaseException:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        raise
    return temporaries


def write_directory(objects: list[Obj], directory: Path) -> list[Path]:
    """Write one file per object into *directory*, remove files of objects no longer rendered,
    and write a kustomization.yaml listing them in apply order (`kubectl apply -k DIR` works).

    Every file is written to a temporary first and renamed into place only once all were
    written, so a failure (a full disk, no permission) leaves the directory as it was rather
    than a partial set of objects that could be applied as if complete."""
    directory.mkdir(parents=True, exist_ok=True)
    stale = {p for p in directory.glob("[0-9][0-9]-*.yaml")}
    files = {directory / file_name(index, obj): to_yaml(obj) for index, obj in enumerate(objects)}
    written = list(files)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [p.name for p in written]}
    files[directory / "kustomization.yaml"] = to_yaml(kustomization)
    for path, tmp in _write_temporaries(files).items():
        tmp.replace(path)
    for path in sorted(stale - set(written)):
        path.unlink()
    return written
