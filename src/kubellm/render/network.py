"""How clients reach the engines: a Service per serving unit and an optional Ingress."""

from __future__ import annotations

from kubellm.render.commands import served_name
from kubellm.render.context import Obj, RenderContext, label_value
from kubellm.render.engine_pod import PORT_NAME
from kubellm.render.units import Unit


def discovery_labels(ctx: RenderContext, unit: Unit) -> dict[str, str]:
    """Labels the gateway's Kubernetes discovery selects EndpointSlices by (the endpoint
    slice controller copies a Service's labels onto its slices): every engine Service is
    `kubellm.dev/component=engine`; `kubellm.dev/model` names the pool (the canary is its own
    pool, `<model>-canary`, for the gateway's weighted split); prefill/decode carry their role."""
    pool = ctx.service.spec.model.served_name + ("-canary" if unit.component == "canary" else "")
    labels = {"kubellm.dev/component": "engine", "kubellm.dev/model": label_value(pool)}
    if unit.kv_role is not None:
        labels["kubellm.dev/role"] = unit.kv_role
    return labels


def unit_service(ctx: RenderContext, unit: Unit) -> Obj:
    exposure = ctx.service.spec.exposure
    port = {"name": PORT_NAME, "port": exposure.service_port, "protocol": "TCP", "targetPort": PORT_NAME}
    main = unit.name == ctx.name
    annotations = {"kubellm.dev/served-model": served_name(ctx, unit), "kubellm.dev/model-uri": unit.model_uri}
    if unit.canary_weight is not None:
        annotations["kubellm.dev/canary-weight"] = str(unit.canary_weight)
    metadata = ctx.metadata(unit.name, unit.component, annotations=annotations)
    metadata["labels"] = {**metadata["labels"], **discovery_labels(ctx, unit)}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "ports": [port],
            "selector": ctx.selector(unit.component),
            "type": exposure.service_type if main else "ClusterIP",
        },
    }


def ingress(ctx: RenderContext) -> list[Obj]:
    exposure = ctx.service.spec.exposure
    settings = exposure.ingress
    if settings is None:
        return []
    backend = {"service": {"name": settings.backend_service or ctx.name, "port": {"number": exposure.service_port}}}
    spec: Obj = {
        "ingressClassName": settings.class_name,
        "rules": [{"host": settings.host, "http": {"paths": [{"backend": backend, "path": "/", "pathType": "Prefix"}]}}],
    }
    if settings.tls is not None:
        spec["tls"] = [{"hosts": [settings.host], "secretName": settings.tls.secret_name}]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": ctx.metadata(ctx.name, "ingress", annotations=dict(settings.annotations)),
            "spec": spec,
        }
    ]
