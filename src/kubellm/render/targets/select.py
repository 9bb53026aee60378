"""The render targets by name, and one entry point that checks the spec first."""

from __future__ import annotations

import copy
from collections.abc import Callable

from kubellm.render.context import RenderContext, parse_target
from kubellm.render.images import DEFAULT_IMAGES, Images
from kubellm.render.render import DEFAULT_TARGET, render
from kubellm.render.targets import DEFAULT, NAMES
from kubellm.render.targets.base import Rendered
from kubellm.render.targets.inference_gateway import render_inference_gateway
from kubellm.render.targets.kserve import render_kserve
from kubellm.spec import LLMService, SpecError, check_target


def _kubernetes(ctx: RenderContext) -> Rendered:
    return Rendered(render(ctx.service, f"{ctx.target[0]}.{ctx.target[1]}", ctx.images))


TARGETS: dict[str, Callable[[RenderContext], Rendered]] = {
    DEFAULT: _kubernetes,
    "kserve": render_kserve,
    "inference-gateway": render_inference_gateway,
}
assert tuple(TARGETS) == NAMES


def render_target(service: LLMService, target: str = DEFAULT, version: str = DEFAULT_TARGET,
                  images: Images = DEFAULT_IMAGES) -> Rendered:
    """*service* rendered for *target* (a key of TARGETS; the caller checked the name)."""
    ctx = RenderContext(service, parse_target(version), images)
    issues = check_target(service.spec, version)
    if issues:
        raise SpecError(issues)
    rendered = TARGETS[target](ctx)
    # modules share constant fragments (probes, volumes); callers get independent copies
    return Rendered(copy.deepcopy(rendered.objects), rendered.unexpressed)
