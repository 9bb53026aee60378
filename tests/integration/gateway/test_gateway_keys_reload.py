"""The files a config names for auth (the API keys file, a JWKS file) are watched with it: a
key revoked in the keys file stops working without a restart and without touching the config.
Over real HTTP on loopback, with the gateway's own file watcher."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import aiohttp
import yaml

from kubellm.gateway.serve import watch_config

from .conftest import StartGateway


async def _status(url: str, key: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"}
                                                   ) as resp:
        return resp.status


async def test_a_key_removed_from_the_keys_file_is_refused_without_a_restart(start_gateway: StartGateway,
                                                                              tmp_path: Path):
    """Before: the keys file was read only with the config, so a revoked key kept working until
    the config file itself changed (in a cluster the projected volume happens to rewrite both)."""
    keys = tmp_path / "keys"
    keys.write_text("alpha:alpha-key-123\nbeta:beta-key-4567\n")
    path = tmp_path / "gateway.yaml"
    config = {"models": [{"name": "m", "endpoints": ["http://127.0.0.1:9"]}], "auth": {"apiKeysFile": str(keys)}}
    path.write_text(yaml.safe_dump(config))
    gw = await start_gateway(config)
    watcher = asyncio.ensure_future(watch_config(path, gw.app, interval_s=0.05))
    try:
        assert [await _status(gw.url, k) for k in ("alpha-key-123", "gamma-key-890")] == [200, 401]
        keys.write_text("beta:beta-key-4567\ngamma:gamma-key-890\n")  # alpha's key revoked, gamma's added
        os.utime(keys, ns=(keys.stat().st_atime_ns, keys.stat().st_mtime_ns + 1_000_000))  # a later mtime for sure
        async with asyncio.timeout(5):
            while await _status(gw.url, "alpha-key-123") != 401:
                await asyncio.sleep(0.05)
        assert [await _status(gw.url, k) for k in ("beta-key-4567", "gamma-key-890")] == [200, 200]
        keys.unlink()  # a keys file gone: the running keys stay (and the error is logged), not open access
        await asyncio.sleep(0.3)
        assert [await _status(gw.url, k) for k in ("gamma-key-890", "no-such-key-1")] == [200, 401]
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
