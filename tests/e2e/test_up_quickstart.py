"""The README's first command, as a user runs it: `scripts/up.sh` (which sets up .venv and
runs `kubellm up examples/quickstart.yaml`).

A real subprocess, the real gateway and simulator processes, the real `openai` client;
SIGTERM must leave no process and no bound port behind.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from kubellm.local.ports import port_is_free
from kubellm.local.testing import UpProcess, pid_alive

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"
README_FIRST_COMMAND = REPO / "scripts" / "up.sh"


@pytest.mark.timeout(300)
def test_quickstart_serves_openai_requests_and_leaves_nothing_on_sigterm(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "scripts/up.sh" in readme, "the README's first command is the one tested here"
    args = ["--port", "0", "--cache-dir", str(tmp_path), "--no-live"]
    with UpProcess(args, command=[str(README_FIRST_COMMAND)], ready_timeout=180) as up:
        assert up.base_url is not None
        client = openai.OpenAI(base_url=up.base_url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-chat"]
        reply = client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8)
        assert reply.choices[0].message.content
        assert reply.usage is not None and reply.usage.completion_tokens == 8
        chunks = list(client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "Count"}], max_tokens=5, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "curl -s " + up.base_url.removesuffix("/v1") in up.output  # the ready-to-paste line

        children = up.descendants()
        assert children, "the engine replica runs as a child process"
        gateway_port = int(up.base_url.rsplit(":", 1)[1].split("/")[0])
        ports = [gateway_port, *up.engine_ports]
        assert not any(port_is_free(p) for p in ports)
        status = up.stop()
    assert status == 0, up.output
    assert not [p for p in children if pid_alive(p)], up.output
    assert all(port_is_free(p) for p in ports)
    assert "all replicas stopped" in up.output


@pytest.mark.timeout(120)
def test_api_keys_of_the_spec_are_enforced_locally(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(QUICKSTART.read_text() + "  security:\n    apiKeys: {secretRef: {name: keys, key: keys}}\n")
    keys = tmp_path / "keys"
    keys.write_text("team-a:sk-local-123\n")
    args = [str(spec), "--port", "0", "--cache-dir", str(tmp_path), "--no-live", "--api-keys-file", str(keys)]
    with UpProcess(args) as up:
        assert up.base_url is not None
        assert "Authorization: Bearer $KUBELLM_API_KEY" in up.output
        body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=up.base_url, api_key="wrong", max_retries=0).chat.completions.create(**body)
        good = openai.OpenAI(base_url=up.base_url, api_key="sk-local-123", max_retries=0)
        assert good.chat.completions.create(**body).choices[0].message.content
        assert up.stop() == 0
