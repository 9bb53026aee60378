"""docs/spec-reference.md and docs/examples/*.md are what scripts/gen_spec_docs.py generates
from the current models and examples (regenerate with that script when this fails)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_spec_docs", ROOT / "scripts" / "gen_spec_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_current() -> None:
    pages = _generator().pages()  # type: ignore[attr-defined]
    assert len(pages) >= 11
    stale = [str(p.relative_to(ROOT)) for p, text in pages.items() if not p.exists() or p.read_text() != text]
    assert stale == [], "run .venv/bin/python scripts/gen_spec_docs.py"


def test_reference_documents_every_contract_field() -> None:
    text = (ROOT / "docs" / "spec-reference.md").read_text()
    for field in ("servedName", "maxNumBatchedTokens", "scaleToZero", "scaleDownSeconds", "ttftP99Ms",
                  "minOutputTokensPerSecond", "sessionHeader", "apiKeys", "acceleratorCount", "profile"):
        assert f"`{field}`" in text, field
