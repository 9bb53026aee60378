"""kubellm.autoscale: the scaling policy, a pure function from signals to a replica count.

Shared by local mode (``kubellm up`` scales engine processes) and, where the cluster does
not use KEDA/HPA, by the operator. Nothing here does I/O or reads the time: callers pass
observed :class:`Signals`, a :class:`ScalingPolicy`, the previous :class:`ScalerState`
and ``now`` (from an injected clock), and get a :class:`Decision` back::

    policy = ScalingPolicy.from_spec(service.spec.scaling)
    state = ScalerState()
    decision = decide(signals, policy, state, now=clock.now())
    state = decision.state            # feed it back on the next tick
    scale_to(decision.replicas)

Errors::

    AutoscaleError          a policy that cannot be built (e.g. max below min)
"""

from kubellm.autoscale.decide import Decision, decide
from kubellm.autoscale.errors import AutoscaleError
from kubellm.autoscale.policy import ScalingPolicy
from kubellm.autoscale.signals import Signals
from kubellm.autoscale.state import ScalerState

__all__ = ["AutoscaleError", "Decision", "ScalerState", "ScalingPolicy", "Signals", "decide"]
