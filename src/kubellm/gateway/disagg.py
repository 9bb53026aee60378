"""Prefill/decode disaggregation, the way vLLM's P/D connectors and toy proxy do it.

1. The prompt goes to a prefill endpoint as a non-streamed request with
   ``max_tokens=1`` and ``kv_transfer_params={"do_remote_decode": true, ...}``; the
   engine computes the KV cache, keeps it, and answers with ``kv_transfer_params``
   saying where the blocks are.
2. The original request goes to a decode endpoint with those ``kv_transfer_params``;
   the decode engine pulls the blocks and streams the output to the client.
Each step is routed by its own pool's scheduler, and each retries before its first byte.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kubellm.gateway.errors import UpstreamError
from kubellm.gateway.payload import ParsedRequest
from kubellm.gateway.pool import Pool
from kubellm.gateway.proxy import Proxy, build_outgoing
from kubellm.gateway.relay import Accounting
from kubellm.gateway.scheduling.request import RoutingRequest
from kubellm.gateway.upstream import Opened

PREFILL_KV_PARAMS: dict[str, Any] = {
    "do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
    "remote_block_ids": None, "remote_host": None, "remote_port": None,
}


def prefill_request(parsed: ParsedRequest) -> ParsedRequest:
    """The prefill step's request: not streamed, one token, asking to keep the KV for decode."""
    body = {k: v for k, v in parsed.body.items() if k != "stream_options"}
    body.update(stream=False, max_tokens=1, kv_transfer_params=PREFILL_KV_PARAMS)
    if "max_completion_tokens" in body:
        body["max_completion_tokens"] = 1
    return ParsedRequest(parsed.kind, body, parsed.model, False, parsed.prompt_text, 1)


async def forward_disaggregated(proxy: Proxy, request: web.Request, parsed: ParsedRequest, upstream_model: str,
                                headers: dict[str, str], prefill: Pool, decode: Pool, rreq: RoutingRequest,
                                acct: Accounting) -> web.StreamResponse:
    out_p = build_outgoing(prefill_request(parsed), upstream_model, headers)
    prefill_acct = Accounting(acct.model, acct.tenant, acct.tenant_label)
    result = await proxy.exchange(out_p, prefill, rreq, prefill_acct, stream=False)
    assert not isinstance(result, Opened)
    status, body, ctype = result
    if status != 200:
        acct.status = status
        return web.Response(body=body, status=status, content_type=ctype or "application/json")
    try:
        kv = json.loads(body).get("kv_transfer_params")
    except (ValueError, AttributeError) as exc:
        raise UpstreamError("prefill endpoint answered with invalid JSON") from exc
    if not isinstance(kv, dict):
        raise UpstreamError("prefill endpoint returned no kv_transfer_params: is it a P/D (kv_producer) engine?")
    out_d = build_outgoing(parsed, upstream_model, headers, extra={"kv_transfer_params": kv})
    return await proxy.forward(request, parsed, out_d, decode, rreq, acct)
