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


def write_directory(objects: list[Obj], directory: Path) -> list[Path]:
    """Write one file per object into *directory* (each through a temporary file renamed into
    place, so no file is ever half-written), remove files of objects no longer rendered, and
    write a kustomization.yaml listing them in apply order (`kubectl apply -k DIR` works)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    stale = {p for p in directory.glob("[0-9][0-9]-*.yaml")}
    for index, obj in enumerate(objects):
        path = directory / file_name(index, obj)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(to_yaml(obj), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    for path in sorted(stale - set(written)):
        path.unlink()
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [p.name for p in written]}
    (directory / "kustomization.yaml").write_text(to_yaml(kustomization), encoding="utf-8")
    return written
