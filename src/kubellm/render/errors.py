"""Errors of the renderer.

Exception tree::

    kubellm.spec.SpecError        the spec is invalid for the target (from check_target)
    RenderError(Exception)        rendering cannot proceed for a reason outside the spec
    ├── TargetVersionError        the target Kubernetes version is malformed or unsupported
    ├── HostConflictError         two services claim one exposure host
    ├── ImageReferenceError       an image setting (--image, $KUBELLM_IMAGE) is no image reference
    ├── UnexpressibleError        a --target cannot express what the spec needs (or, with
    │                             --strict, any field it would otherwise only warn about)
    └── ArgoCdSourceError         --argocd REPO_URL PATH names no Git repository or no relative path
"""

from __future__ import annotations


class RenderError(Exception):
    """Rendering failed for a reason outside the spec."""


class TargetVersionError(RenderError):
    """The target Kubernetes version is malformed or unsupported."""


class HostConflictError(RenderError):
    """Two services claim one exposure host."""


class ImageReferenceError(RenderError):
    """An image setting is not an image reference."""


class UnexpressibleError(RenderError):
    """A render target cannot express the spec (its message names the fields and target)."""


class ArgoCdSourceError(RenderError):
    """--argocd was given something Argo CD could not read as a repository and path."""
