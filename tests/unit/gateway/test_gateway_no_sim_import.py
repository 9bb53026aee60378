"""The gateway is a router of real engines: nothing in it may import the simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kubellm.gateway

GATEWAY = Path(kubellm.gateway.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_gateway_module_names_kubellm_sim() -> None:
    offenders = {str(p.relative_to(GATEWAY)): sorted(n for n in _imports(p) if n.startswith("kubellm.sim"))
                 for p in GATEWAY.rglob("*.py")}
    assert {p: n for p, n in offenders.items() if n} == {}
    assert len(offenders) > 20  # the scan saw the package


def test_importing_the_whole_gateway_loads_no_simulator_module() -> None:
    code = ("import sys, pkgutil, importlib, kubellm.gateway as g\n"
            "for m in pkgutil.walk_packages(g.__path__, 'kubellm.gateway.'): importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.startswith('kubellm.sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
