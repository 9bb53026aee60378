from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.gateway.config import load_config, parse_config
from kubellm.gateway.errors import ConfigError

GOOD = """
models:
  - name: llama
    aliases: [llama3]
    loraAdapters: [sql]
    endpoints: ["http://127.0.0.1:8001"]
    canary: [{model: llama-v2, weight: 10}]
  - name: llama-v2
    endpoints: ["http://127.0.0.1:8002"]
    profile: rr
profiles:
  rr: {scorers: [], picker: {type: round-robin}}
timeouts: {firstByteS: 5}
"""


def test_load_good_yaml(tmp_path: Path):
    p = tmp_path / "g.yaml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.models[0].aliases == ("llama3",)
    assert cfg.timeouts.first_byte_s == 5
    assert set(cfg.all_profiles()) >= {"default", "round-robin", "rr"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": [{"name": "a", "endpointz": []}]}, "models.0.endpointz: Extra inputs"),
        ({"models": [{"name": "a", "endpoints": ["ftp://x"]}]}, "models.0.endpoints.0"),
        ({"models": [{"name": "a"}, {"name": "b", "aliases": ["a"]}]}, "used by both"),
        ({"models": [{"name": "a", "profile": "fast"}]}, "unknown routing profile 'fast'"),
        ({"models": [{"name": "a", "canary": [{"model": "zz", "weight": 5}]}]}, "canary target 'zz'"),
        ({"models": [{"name": "a", "canary": [{"model": "b", "weight": 60}, {"model": "c", "weight": 50}]},
                     {"name": "b"}, {"name": "c"}]}, "more than 100"),
        ({"timeouts": {"connectS": -1}}, "timeouts.connectS"),
    ],
)
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_unreadable_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_is_frozen():
    cfg = parse_config({})
    with pytest.raises(Exception):
        cfg.session_header = "x"  # type: ignore[misc]
