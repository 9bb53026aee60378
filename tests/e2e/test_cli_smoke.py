"""The installed `kubellm` entry point starts and lists its commands."""

import subprocess
import sys


def test_kubellm_version_runs_as_a_user_types_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubellm.cli.main", "version"], capture_output=True, text=True, check=True
    )
    from kubellm import __version__

    assert out.stdout.strip() == __version__
