"""kubellm.render: a pure, deterministic function from an LLMService to Kubernetes objects.

``render(service, target_version)`` returns plain dicts in apply order; ``output`` turns
them into YAML. One module per concern: storage (cache claim, loader Jobs), workload
(Deployments), rollout (Argo), multinode (LeaderWorkerSet), network (Service, Ingress),
scaling (KEDA/HPA), security (ServiceAccount, NetworkPolicy, RBAC, PDB, quota), monitors,
alerts and dashboard. Errors are drawn in ``kubellm.render.errors``.
"""

from kubellm.render.errors import RenderError, TargetVersionError
from kubellm.render.render import DEFAULT_TARGET, render

__all__ = ["DEFAULT_TARGET", "RenderError", "TargetVersionError", "render"]
