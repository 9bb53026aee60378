"""checkov (run once, over every example rendered to files, and every namespace gateway of
the examples) reports no failed check beyond the reasoned skips in checkov_skips.yaml. Needs .tools/checkov (scripts/setup/render.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from kubellm.render import render
from kubellm.render.cli import namespace_gateways
from kubellm.render.output import write_directory
from kubellm.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
SKIPS = yaml.safe_load((Path(__file__).parent / "checkov_skips.yaml").read_text())["skips"]


def test_checkov_finds_no_failed_check_in_any_example(tmp_path: Path) -> None:
    assert CHECKOV.exists(), "run scripts/setup/render.sh to install checkov into .tools/checkov"
    assert all(str(reason).strip() for reason in SKIPS.values()), "every skip needs a reason"
    for spec_path in sorted((ROOT / "examples").glob("*.yaml")):
        service = load_spec(spec_path)
        # with the gateway of its namespace, as `kubellm render --gateway` and the operator make it
        write_directory(render(service) + namespace_gateways([service], (1, 31)), tmp_path / spec_path.stem)
    command = [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json", "--quiet",
               "--skip-check", ",".join(sorted(SKIPS))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['check_name']} in {f['resource']} ({Path(f['file_path']).name})"
        for report in reports
        for f in report["results"]["failed_checks"]
    ]
    passed = sum(report["summary"]["passed"] for report in reports)
    assert failed == []
    assert passed > 1000  # checkov really scanned the objects
