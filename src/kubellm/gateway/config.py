"""The gateway's configuration: one frozen pydantic model loaded from YAML.

The same file is what ``kubellm render`` emits as a ConfigMap. Unknown keys are
rejected (``extra="forbid"``) so a typo is an error naming the field, not a silent
default. Keys are snake_case in Python and accept camelCase in YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from kubellm.gateway.errors import ConfigError
from kubellm.kvhash import HashAlgo, UnseededHashError, resolve_seed

Url = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
Name = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
    )


class PluginConfig(_Model):
    """One routing plugin: its registered type name, weight (scorers) and parameters."""

    type: Name
    weight: float = Field(1.0, ge=0.0, le=100.0)
    params: dict[str, Any] = {}


class RoutingProfile(_Model):
    """Filters, then weighted scorers, then one picker (the endpoint picker's shape)."""

    filters: tuple[PluginConfig, ...] = (PluginConfig(type="healthy"), PluginConfig(type="lora-capable"))
    scorers: tuple[PluginConfig, ...] = (
        PluginConfig(type="prefix-affinity", weight=3.0),
        PluginConfig(type="queue-depth", weight=2.0),
        PluginConfig(type="kv-cache-usage", weight=1.0),
        PluginConfig(type="outstanding-requests", weight=2.0),
        PluginConfig(type="session-affinity", weight=1.0),
        PluginConfig(type="lora-affinity", weight=1.0),
    )
    picker: PluginConfig = PluginConfig(type="max-score")


# Lowest predicted time to first token (kubellm.gateway.scheduling.latency), alone: the
# prediction already weighs a cache miss's prefill against the queue at each endpoint.
PREDICTED_LATENCY = RoutingProfile(scorers=(PluginConfig(type="predicted-latency"),))

# The default: the lowest predicted time to first token, with a request's session kept on the
# engine that served it last and an adapter's requests on engines that have it loaded, where
# the prediction is close (neither is in the latency model; both are neutral for a request
# without a session header or an adapter, where this is the predicted-latency profile).
DEFAULT = RoutingProfile(scorers=(PluginConfig(type="predicted-latency", weight=4.0),
                                  PluginConfig(type="session-affinity", weight=1.0),
                                  PluginConfig(type="lora-affinity", weight=1.0)))


def _default_profiles() -> dict[str, RoutingProfile]:
    return {
        "default": DEFAULT,
        "weighted": RoutingProfile(),  # fixed weights of min-max-normalised scores (the default until issue 18)
        "predicted-latency": PREDICTED_LATENCY,
        "round-robin": RoutingProfile(scorers=(), picker=PluginConfig(type="round-robin")),
        # The prompt's first block decides the engine (bounded load): gateway replicas agree on
        # a prefix's engine while its load is under the bound each replica sees.
        "prefix-hash": RoutingProfile(scorers=(), picker=PluginConfig(type="consistent-hash")),
    }


class CanarySplit(_Model):
    """Send ``weight`` percent of a model's requests to another configured model."""

    model: Name
    weight: float = Field(gt=0.0, le=100.0)


class Disaggregation(_Model):
    """Prefill and decode pools of a disaggregated model (P/D), each routed on its own."""

    prefill_endpoints: tuple[Url, ...] = ()
    decode_endpoints: tuple[Url, ...] = ()
    # the weighted profile: the latency model learns a request's TTFT as one pool's, and a
    # disaggregated request's is two pools' (its prediction for P/D is not built or measured)
    prefill_profile: str = "weighted"
    decode_profile: str = "weighted"


class ModelConfig(_Model):
    """One model the gateway serves."""

    name: Name
    served_name: Name | None = Field(None, description="model name the engines serve (default: name)")
    aliases: tuple[Name, ...] = ()
    lora_adapters: tuple[Name, ...] = ()
    endpoints: tuple[Url, ...] = ()
    profile: str = "default"
    canary: tuple[CanarySplit, ...] = ()
    disaggregation: Disaggregation | None = None
    scale_from_zero: bool = False
    max_queue: int = Field(256, ge=0, description="requests waiting for an endpoint slot before 429")
    max_outstanding_per_endpoint: int = Field(256, ge=1, description="in-flight requests per endpoint")
    kv_events_port: int | None = Field(None, ge=1, le=65535, description="engines' ZMQ KV-event port (same host)")
    kv_events_endpoints: dict[str, str] = Field({}, description="endpoint URL -> ZMQ address of its KV events")
    precise_tokenizer: Literal["sim", "hf"] | None = Field(
        None, description="tokenizer giving the engine's block hashes for the precise-prefix scorer: "
                          "hf (the model's tokenizer.json, from tokenizer_path) or sim (simulated engines)")
    tokenizer_path: Path | None = Field(None, description="model directory holding tokenizer.json (hf)")
    kv_block_size: int = Field(16, ge=1)
    kv_hash_algo: HashAlgo = Field("sha256", description="the engines' --prefix-caching-hash-algo")
    kv_hash_seed: str | None = Field(None, description="the engines' PYTHONHASHSEED (None: unset)")
    lora_paths: dict[str, str] = Field({}, description="LoRA adapter -> the path its engines loaded it from "
                                                       "(part of vLLM's block hashes; default: its name)")

    @property
    def upstream_name(self) -> str:
        return self.served_name or self.name

    @model_validator(mode="after")
    def _canary_total(self) -> "ModelConfig":
        if sum(c.weight for c in self.canary) > 100.0:
            raise ValueError(f"model {self.name!r}: canary weights add up to more than 100")
        return self

    @model_validator(mode="after")
    def _hash_seed_known(self) -> "ModelConfig":
        if self.precise_tokenizer is not None:
            try:
                resolve_seed(self.kv_hash_algo, self.kv_hash_seed)
            except UnseededHashError as exc:
                raise ValueError(f"model {self.name!r}: {exc}") from None
        return self


class Timeouts(_Model):
    connect_s: float = Field(2.0, gt=0.0)
    first_byte_s: float = Field(60.0, gt=0.0)
    total_s: float = Field(600.0, gt=0.0)
    queue_s: float = Field(30.0, gt=0.0, description="longest wait for an endpoint slot")
    activation_s: float = Field(120.0, gt=0.0, description="longest hold while scaling from zero")
    drain_s: float = Field(30.0, ge=0.0, description="SIGTERM: time given to in-flight requests")


class Resilience(_Model):
    max_attempts: int = Field(3, ge=1, le=10, description="tries on distinct endpoints before the first byte")
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open an endpoint's breaker")
    breaker_open_s: float = Field(10.0, gt=0.0)
    health_interval_s: float = Field(5.0, gt=0.0)
    scrape_interval_s: float = Field(1.0, gt=0.0)
    max_held_activations: int = Field(128, ge=0, description="requests held while scaling from zero")


class TenantConfig(_Model):
    """A tenant: which models it may call and its limits (None: unlimited)."""

    name: Name
    models: tuple[Name, ...] = ("*",)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)


class JwtConfig(_Model):
    """Bearer JWTs verified against a JWKS file; the tenant is read from a claim."""

    jwks_file: Path
    issuer: str | None = None
    audience: str | None = None
    tenant_claim: str = "tenant"
    algorithms: tuple[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"], ...] = ("RS256", "ES256")


class AuthConfig(_Model):
    """API keys file (``tenant:key`` lines, or bare keys for tenant ``default``) and/or JWTs."""

    api_keys_file: Path | None = None
    jwt: JwtConfig | None = None
    tenants: tuple[TenantConfig, ...] = ()


class KubernetesDiscovery(_Model):
    namespace: str = "default"
    label_selector: str = "kubellm.dev/component=engine"
    model_label: str = "kubellm.dev/model"
    port_name: str = "http"


class GatewayConfig(_Model):
    """Everything the gateway needs; the composition root reads nothing else."""

    models: tuple[ModelConfig, ...] = ()
    profiles: dict[str, RoutingProfile] = Field(default_factory=_default_profiles)
    timeouts: Timeouts = Timeouts()
    resilience: Resilience = Resilience()
    auth: AuthConfig = AuthConfig()
    kubernetes: KubernetesDiscovery | None = None
    session_header: str = "x-session-id"
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    access_log: bool = True
    server: Literal["aiohttp", "fast"] = "fast"  # the HTTP server (docs/gateway.md, "The faster data path")

    @model_validator(mode="after")
    def _references(self) -> "GatewayConfig":
        profiles = {**_default_profiles(), **self.profiles}
        names: dict[str, str] = {}
        for m in self.models:
            for n in (m.name, *m.aliases, *m.lora_adapters):
                if n in names:
                    raise ValueError(f"model name {n!r} is used by both {names[n]!r} and {m.name!r}")
                names[n] = m.name
            used = [m.profile] + ([m.disaggregation.prefill_profile, m.disaggregation.decode_profile]
                                  if m.disaggregation else [])
            for p in used:
                if p not in profiles:
                    raise ValueError(f"model {m.name!r}: unknown routing profile {p!r} (known: {sorted(profiles)})")
        served = {m.name for m in self.models}
        for m in self.models:
            for c in m.canary:
                if c.model not in served or c.model == m.name:
                    raise ValueError(f"model {m.name!r}: canary target {c.model!r} is not another configured model")
        return self

    def all_profiles(self) -> dict[str, RoutingProfile]:
        return {**_default_profiles(), **self.profiles}


def _message(error: Any) -> str:
    """pydantic's message, except a URL pattern's, which people cannot read as a regex."""
    if error["type"] == "string_pattern_mismatch" and "https?://" in str(error.get("ctx", {}).get("pattern", "")):
        return f"{error['input']!r} is not an http(s) URL (e.g. http://10.0.0.5:8000)"
    return str(error["msg"])


def parse_config(data: Any, *, source: str = "<config>") -> GatewayConfig:
    """Validate *data*; errors name the field path and the file."""
    try:
        return GatewayConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {_message(e)}" for e in exc.errors()]
        raise ConfigError(f"invalid gateway config {source}:\n  " + "\n  ".join(lines)) from exc


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway config YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"gateway config {path} is not valid YAML: {exc}") from exc
    return parse_config(data, source=str(path))
