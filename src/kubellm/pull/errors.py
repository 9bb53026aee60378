"""Errors of `kubellm pull`: one tree, each carrying a message that says what to fix.

::

    PullError                       anything that stops a pull (exit code 1; 2 for bad input)
    ├── PullInputError              a bad URI, option or destination (exit code 2)
    ├── SourceError                 the source refused or failed
    │   ├── CredentialsError        no or wrong credentials, gated or private repository
    │   ├── NotFoundError           missing repository, revision, bucket, object or tag
    │   └── TransferError           network failures after all retries
    │       └── StallError          no bytes arrived for the stall timeout
    ├── IntegrityError              bytes differ from what the source promised (size, digest)
    │   └── SafetensorsError        a safetensors header that does not match its file
    ├── UnsafeContentError          pickle weights, names escaping the destination, symlinks
    └── DiskSpaceError              not enough free space, or the disk filled up

Library errors (botocore, httpx, huggingface_hub, azure, google) are mapped into this tree
inside each driver, with ``raise ... from``, so nothing else leaks out of `kubellm.pull`.
"""

from __future__ import annotations


class PullError(Exception):
    """A pull that cannot complete; ``str(error)`` is the user-facing message."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


class PullInputError(PullError):
    exit_code = 2


class SourceError(PullError):
    pass


class CredentialsError(SourceError):
    pass


class NotFoundError(SourceError):
    pass


class TransferError(SourceError):
    #: Whether trying the same request again may help (network blips, 5xx, throttling).
    retryable = True


class StallError(TransferError):
    pass


class IntegrityError(PullError):
    pass


class SafetensorsError(IntegrityError):
    pass


class UnsafeContentError(PullError):
    pass


class DiskSpaceError(PullError):
    pass
