"""Before any load: does something OpenAI-compatible answer at the URL, and does it serve
the model? One ``GET /v1/models``; every way it can fail is a ``TargetError`` that says what
to do, so a run never spends minutes sending requests that cannot succeed."""

from __future__ import annotations

import asyncio

import aiohttp

from kubellm.bench.errors import TargetError

PROBE_TIMEOUT_S = 10.0


def _models_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/v1/models"


def served_models(body: object) -> list[str]:
    """The model ids of an OpenAI ``/v1/models`` body; TargetError if it is not one."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise TargetError("the answer to GET /v1/models is not an OpenAI model list: is this an OpenAI-compatible server?")
    return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id") is not None]


def choose_model(base_url: str, served: list[str], wanted: str | None) -> str:
    """*wanted* if served, else the first served when none was asked for."""
    if wanted is None and served:
        return served[0]
    if wanted is not None and wanted in served:
        return wanted
    listing = ", ".join(served) or "no model"
    what = f"model {wanted!r} is not served" if wanted else "no model is served"
    raise TargetError(f"{what} at {base_url} (it serves: {listing}); pass one of them with --model")


def _status_error(base_url: str, status: int) -> TargetError:
    if status in (401, 403):
        return TargetError(f"{base_url} refused the request ({status}): give the API key with --api-key or KUBELLM_API_KEY")
    if status == 404:
        return TargetError(
            f"{base_url} has no /v1/models (404): give the server's base URL, without /v1 "
            "(e.g. http://127.0.0.1:8000), of an OpenAI-compatible server"
        )
    return TargetError(f"{base_url} answered GET /v1/models with HTTP {status}: is the server healthy?")


async def _fetch(session: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> object:
    async with session.get(_models_url(base_url), headers=headers) as response:
        if response.status != 200:
            raise _status_error(base_url, response.status)
        try:
            return await response.json(content_type=None)
        except ValueError as exc:
            raise TargetError(f"{base_url} answered GET /v1/models with something other than JSON: "
                              "is this an OpenAI-compatible server?") from exc


async def probe(base_url: str, model: str | None, headers: dict[str, str], timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The model to use; TargetError when nothing answers, the server refuses, or the model is not served."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            body = await _fetch(session, base_url, headers)
    except (aiohttp.InvalidURL, ValueError) as exc:
        raise TargetError(f"{base_url!r} is not a URL: give one like http://127.0.0.1:8000") from exc
    except aiohttp.ClientError as exc:
        raise TargetError(f"nothing answers at {base_url} ({type(exc).__name__}: {exc}): "
                          "is the server running? check the URL and port") from exc
    except asyncio.TimeoutError as exc:
        raise TargetError(f"{base_url} did not answer GET /v1/models within {timeout_s:g} s: "
                          "is the server running and reachable?") from exc
    return choose_model(base_url, served_models(body), model)
