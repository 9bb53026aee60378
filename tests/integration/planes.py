"""A fresh test control plane for a test module's fixture (docs/controlplane.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kubellm.operator.testing import ControlPlane, ControlPlaneError, find_binaries


@contextmanager
def started_plane(tmp_path_factory: pytest.TempPathFactory, name: str = "cp") -> Iterator[ControlPlane]:
    """The control plane, stopped afterwards; missing binaries fail the test (never a skip)
    and name the script that builds them."""
    try:
        binaries = find_binaries()
    except ControlPlaneError as exc:
        pytest.fail(f"{exc} (scripts/setup/controlplane.sh builds them)", pytrace=False)
    with ControlPlane.start(tmp_path_factory.mktemp(name), binaries=binaries) as plane:
        yield plane
