"""Constrained scalar types shared by the spec models (names, quantities, durations)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# Kubernetes object names (RFC 1123 label); 40 characters leaves room for the suffixes
# the renderer appends (`-prefill`, `-loader`, `-prometheus-adapter`...) under the 63 limit.
DnsLabel = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40),
]
KubeName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253),
]
# A Kubernetes resource quantity such as "500m", "16Gi", "2".
Quantity = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"),
]
Percent = Annotated[int, Field(ge=0, le=100)]
Seconds = Annotated[int, Field(ge=0, le=86400)]
PositiveInt = Annotated[int, Field(ge=1)]
LabelKey = Annotated[str, StringConstraints(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", max_length=316)]
LabelValue = Annotated[str, StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", max_length=63)]
LabelMap = dict[LabelKey, LabelValue]


def quantity_bytes(quantity: str) -> float:
    """Convert a quantity like "16Gi" to a number (bytes for memory, cores for CPU)."""
    units = {
        "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * units[suffix]
    return float(quantity)
