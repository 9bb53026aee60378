"""Other platforms' objects from the same LLMService: `kubellm render --target NAME`.

``kubernetes`` is kubellm's own rendering; ``kserve`` a KServe InferenceService and the
ClusterServingRuntime it names (``kserve.py``); ``inference-gateway`` kubellm's engines
behind a Gateway API Inference Extension InferencePool with the endpoint picker's config
(``inference_gateway.py``). Each target says which spec fields it cannot express
(``base.Rendered.unexpressed``); the command prints them as warnings, or refuses with
``--strict``. ``argocd.py`` wraps any target's rendered directory in an Argo CD Application.

Only the names live here, so that `kubellm render` imports a target's module when asked for it.
"""

from __future__ import annotations

DEFAULT = "kubernetes"
NAMES = (DEFAULT, "kserve", "inference-gateway")
