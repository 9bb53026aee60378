"""kubellm.pull: fast, resumable, verified model downloads into the cache volume.

Public surface: `pull`, `PullOptions`, `TransferOptions`, `SourceSettings`, `PullResult`, and the
error tree in `kubellm.pull.errors`. Drivers live in `kubellm.pull.drivers`, one per URI scheme.
"""

from kubellm.pull.errors import PullError
from kubellm.pull.options import PullOptions, SourceSettings, TransferOptions
from kubellm.pull.pull import PullResult, pull

__all__ = ["PullError", "PullOptions", "PullResult", "SourceSettings", "TransferOptions", "pull"]
