"""The Containerfile (for docker, podman, buildah: it cannot be built here, no Docker engine)
and scripts/image/build.sh make the same image: same dependencies, user, entrypoint,
environment, labels and Debian packages. Read as text from both."""

from __future__ import annotations

import json
import re
import shlex

from kubellm import __version__

from .conftest import ROOT

CONTAINERFILE = (ROOT / "Containerfile").read_text()
BUILD_SH = (ROOT / "scripts/image/build.sh").read_text()
LIB_SH = (ROOT / "scripts/image/lib.sh").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(CONTAINERFILE)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def script_env() -> dict[str, str]:
    (body,) = re.findall(r"^IMAGE_ENV=\((.*?)\)", BUILD_SH, re.S | re.M)
    return dict(item.split("=", 1) for item in shlex.split(body))


def test_it_is_multi_stage_on_a_base_that_must_be_pinned_by_digest() -> None:
    steps = instructions(CONTAINERFILE)
    assert [args for op, args in steps if op == "FROM"] == ["${BASE} AS build", "${BASE}"]
    assert any(op == "RUN" and "*@sha256:*" in args for op, args in steps), "the build refuses a base without a digest"


def test_both_run_as_65532_in_tmp_with_the_same_entrypoint() -> None:
    final = dict(final_stage())
    assert final["USER"] == "65532:65532" and "--config.user 65532:65532" in LIB_SH
    assert final["WORKDIR"] == "/tmp" and "--config.workingdir /tmp" in LIB_SH
    (script_entrypoint,) = re.findall(r"kubellm\) .*?\n\s*entrypoint='(.*?)'", BUILD_SH)
    assert json.loads(final["ENTRYPOINT"]) == json.loads(script_entrypoint)


def test_both_set_the_same_environment() -> None:
    (env,) = [args for op, args in final_stage() if op == "ENV"]
    assert dict(item.split("=", 1) for item in shlex.split(env)) == script_env()


def test_both_carry_the_same_labels_and_version() -> None:
    (labels,) = [args for op, args in final_stage() if op == "LABEL"]
    containerfile = dict(item.split("=", 1) for item in shlex.split(labels))
    script = dict(re.findall(r'--config\.label "([^=]+)=([^"]*)"', LIB_SH))
    assert containerfile.keys() == script.keys()
    assert containerfile["org.opencontainers.image.source"] == re.findall(r'^SOURCE_URL="(.*)"', BUILD_SH, re.M)[0]
    assert f"ARG VERSION={__version__}" in CONTAINERFILE


def test_both_install_the_same_pinned_requirements_and_debian_packages() -> None:
    assert "--require-hashes" in CONTAINERFILE and "scripts/image/requirements.txt" in CONTAINERFILE
    assert "scripts/image/requirements.txt" in BUILD_SH
    (packages,) = re.findall(r'kubellm\) packages="([^"]+)"', BUILD_SH)
    (install,) = [args for op, args in final_stage() if op == "RUN" and "apt-get install" in args]
    installed = install.split("--no-install-recommends", 1)[1].split("&&", 1)[0].split()
    assert sorted(installed) == sorted(packages.split(","))


def test_the_final_stage_drops_apt_and_never_has_pip() -> None:
    final = " ".join(args for _, args in final_stage())
    assert "dpkg --purge apt" in final and "dpkg --purge apt" in LIB_SH
    assert "pip install" not in final and "python3-venv" not in final
    build = " ".join(args for _, args in instructions(CONTAINERFILE)[: len(instructions(CONTAINERFILE)) - len(final_stage())])
    assert "pip uninstall -y pip setuptools" in build
    assert "/usr/share/kubellm/sbom.cdx.json" in final
