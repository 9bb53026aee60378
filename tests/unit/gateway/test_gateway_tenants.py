from __future__ import annotations

from pathlib import Path

import pytest

from kubellm.gateway.clock import FakeClock
from kubellm.gateway.config import AuthConfig, TenantConfig
from kubellm.gateway.errors import (AuthenticationError, ConfigError, PermissionDeniedError,
                                    RateLimitedError)
from kubellm.gateway.tenants import TenantRegistry, digest, parse_keys_file


def _registry(tmp_path: Path, clock: FakeClock, **tenant: object) -> TenantRegistry:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nteam-a:key-aaaa-1111\n\nbare-key-2222\n")
    auth = AuthConfig(api_keys_file=keys, tenants=(TenantConfig(name="team-a", **tenant),))
    return TenantRegistry.from_config(auth, clock)


def test_keys_file_is_kept_hashed():
    pairs = parse_keys_file("a:secret-123456\nplainkey99\n", "f")
    assert pairs == [("a", digest("secret-123456")), ("default", digest("plainkey99"))]
    assert all(b"secret" not in d for _, d in pairs)


@pytest.mark.parametrize("line", ["a:short", ":nokey-1234567", "tiny"])
def test_bad_key_lines_name_the_line_not_the_key(line):
    with pytest.raises(ConfigError) as err:
        parse_keys_file("ok:abcdefgh12\n" + line, "keys.txt")
    assert "keys.txt:2" in err.value.message
    assert line.split(":")[-1] not in err.value.message


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic key-aaaa-1111", "Bearer wrong-key-000"])
def test_authentication_rejects(tmp_path, clock, header):
    with pytest.raises(AuthenticationError):
        _registry(tmp_path, clock).authenticate(header)


def test_authentication_finds_the_tenant(tmp_path, clock):
    reg = _registry(tmp_path, clock)
    assert reg.authenticate("Bearer key-aaaa-1111").name == "team-a"
    assert reg.authenticate("bearer bare-key-2222").name == "default"


def test_no_keys_file_means_anonymous(clock):
    reg = TenantRegistry.from_config(AuthConfig(), clock)
    assert reg.authenticate(None).name == "anonymous"


def test_allowed_models(tmp_path, clock):
    reg = _registry(tmp_path, clock, models=("small",))
    t = reg.authenticate("Bearer key-aaaa-1111")
    reg.admit(t, "small")
    with pytest.raises(PermissionDeniedError):
        reg.admit(t, "large")


def test_rpm_limit_refills_with_time(tmp_path, clock):
    reg = _registry(tmp_path, clock, rpm=2)
    t = reg.authenticate("Bearer key-aaaa-1111")
    reg.admit(t, "m")
    reg.admit(t, "m")
    with pytest.raises(RateLimitedError) as err:
        reg.admit(t, "m")
    assert err.value.retry_after == pytest.approx(30.0)
    clock.advance(30.0)
    reg.admit(t, "m")


def test_tpm_is_reconciled_after_the_response(tmp_path, clock):
    reg = _registry(tmp_path, clock, tpm=600)
    t = reg.authenticate("Bearer key-aaaa-1111")
    reg.admit(t, "m")
    reg.charge(t, 900)  # the response used more than the whole minute's budget
    with pytest.raises(RateLimitedError) as err:
        reg.admit(t, "m")
    assert err.value.retry_after == pytest.approx(30.1)  # (300 owed + 1) at 10 tokens/s
    clock.advance(30.2)
    reg.admit(t, "m")


def test_a_reloaded_config_keeps_the_buckets_of_the_tenants_it_keeps(tmp_path, clock):
    reg = _registry(tmp_path, clock, rpm=2)
    t = reg.authenticate("Bearer key-aaaa-1111")
    reg.admit(t, "m")
    reg.admit(t, "m")
    reloaded = TenantRegistry.from_config(AuthConfig(api_keys_file=tmp_path / "keys", tenants=(
        TenantConfig(name="team-a", rpm=2), TenantConfig(name="default", rpm=1))), clock, previous=reg)
    t = reloaded.authenticate("Bearer key-aaaa-1111")
    with pytest.raises(RateLimitedError):  # a reload is no way around a limit
        reloaded.admit(t, "m")
    added = reloaded.authenticate("Bearer bare-key-2222")
    reloaded.admit(added, "m")  # a tenant new to the limits starts with a full bucket
    with pytest.raises(RateLimitedError):
        reloaded.admit(added, "m")
    raised = TenantRegistry.from_config(AuthConfig(api_keys_file=tmp_path / "keys", tenants=(
        TenantConfig(name="team-a", rpm=4),)), clock, previous=reloaded)
    clock.advance(15.0)  # refills at the new capacity: 1 request per 15 s
    raised.admit(raised.authenticate("Bearer key-aaaa-1111"), "m")
