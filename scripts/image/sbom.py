"""Writes a CycloneDX 1.5 JSON SBOM of an image's root filesystem.

    python3 scripts/image/sbom.py ROOTFS NAME VERSION > sbom.cdx.json

Lists every Debian package dpkg records as installed (``var/lib/dpkg/status``) and every
Python distribution in the image's virtual environment (``*.dist-info/METADATA`` under
``opt/kubellm``), each with its package URL. Reads files only: nothing in the root
filesystem is executed, so it runs on any machine. Standard library only.
"""

from __future__ import annotations

import email.parser
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

VENV = Path("opt/kubellm")


def dpkg_records(status: str) -> Iterator[dict[str, str]]:
    """The stanzas of a dpkg status file as dicts (continuation lines dropped)."""
    for stanza in status.split("\n\n"):
        record: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                record[key] = value.strip()
        if record.get("Status", "").endswith(" installed"):
            yield record


def deb_component(record: dict[str, str]) -> dict[str, Any]:
    name, version, arch = record["Package"], record["Version"], record.get("Architecture", "all")
    purl = f"pkg:deb/debian/{name}@{quote(version, safe='')}?arch={arch}&distro=debian-12"
    return {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}


def python_component(metadata: str) -> dict[str, Any]:
    headers = email.parser.Parser().parsestr(metadata, headersonly=True)
    name, version = headers["Name"], headers["Version"]
    purl = f"pkg:pypi/{name.lower().replace('_', '-')}@{quote(version, safe='')}"
    component: dict[str, Any] = {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
    licence = headers.get("License-Expression") or headers.get("License") or ""
    if licence and "\n" not in licence and len(licence) < 100:
        component["licenses"] = [{"license": {"name": licence}}]
    return component


def components(rootfs: Path) -> list[dict[str, Any]]:
    status = (rootfs / "var/lib/dpkg/status").read_text(encoding="utf-8")
    found = [deb_component(r) for r in dpkg_records(status)]
    found += [python_component(m.read_text(encoding="utf-8")) for m in sorted((rootfs / VENV).glob("lib/python3*/site-packages/*.dist-info/METADATA"))]
    return sorted(found, key=lambda c: str(c["bom-ref"]))


def sbom(rootfs: Path, name: str, version: str) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    image = {"type": "container", "bom-ref": f"{name}:{version}", "name": name, "version": version}
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "tools": {"components": [{"type": "application", "name": "kubellm scripts/image/sbom.py"}]},
            "component": image,
        },
        "components": components(rootfs),
    }


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: sbom.py ROOTFS NAME VERSION")
    json.dump(sbom(Path(argv[0]), argv[1], argv[2]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
