"""Composition root of the running operator: client, lease, reconciler, kopf.

    await run_operator(settings, render, stop)

Waits for the lease (when leader election is on), then runs kopf until *stop* is set or the
lease is lost (LeaseError: the process exits non-zero and its Deployment restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import kopf
from kopf._core.engines.peering import Identity

from kubellm.operator.gatewayconfig import GatewayConfigPublisher
from kubellm.operator.handlers import build_registry, kopf_settings
from kubellm.operator.kube import Kube
from kubellm.operator.lease import LeaderElector
from kubellm.operator.reconcile import Reconciler, Renderer
from kubellm.operator.settings import OperatorSettings

log = logging.getLogger("kubellm.operator")


async def run_operator(settings: OperatorSettings, render: Renderer, stop: asyncio.Event) -> None:
    async with Kube.connect(settings.kubeconfig, settings.context) as kube:
        # One request first: an unreachable or refusing cluster fails here with one message
        # (ClusterUnreachableError, UnauthorizedError...) instead of kopf retrying for minutes.
        await kube.server_version()
        holder: asyncio.Task[None] | None = None
        elector: LeaderElector | None = None
        if settings.leader_election:
            elector = LeaderElector(
                kube, settings.lease_name, settings.lease_namespace or kube.namespace, settings.identity, settings.lease_seconds
            )
            log.info("waiting for lease %s as %s", settings.lease_name, settings.identity)
            waiting = asyncio.create_task(elector.acquire())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not waiting.done():
                waiting.cancel()
                return
            waiting.result()  # re-raises what stopped the election (never lead without the lease)
            log.info("leading as %s", settings.identity)
            holder = asyncio.create_task(elector.hold(stop))
        reconciler = Reconciler(kube, render, gateway=GatewayConfigPublisher(kube, settings=settings.gateway))
        try:
            await kopf.operator(
                registry=build_registry(reconciler, settings),
                settings=kopf_settings(settings),
                clusterwide=not settings.namespaces,
                namespaces=settings.namespaces,
                stop_flag=stop,
                standalone=True,
                # Our own identity: kopf's default asks getpass.getuser(), which fails in a
                # container whose UID has no /etc/passwd entry (runAsUser of any number).
                identity=Identity(settings.identity),
            )
        finally:
            if holder is not None:
                if not holder.done():
                    holder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await holder  # re-raises LeaseError when the lease was lost
                if elector is not None:
                    await elector.release()
