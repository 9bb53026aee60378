"""What the scheduler knows of a request: model, adapter, prompt-prefix blocks, session."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from xxhash import xxh3_64_intdigest


_SERIALS = itertools.count(1)  # 0: no request (the learner's "no prediction kept")


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    model: str
    lora: str | None = None
    prefix_hashes: tuple[int, ...] = ()  # chained hashes of the prompt's blocks
    session: str | None = None  # value of the session header
    token_hashes: tuple[int, ...] = ()  # engine block hashes of the prompt's tokens (precise prefix)
    prompt_chars: int = 0  # length of the prompt's text (the latency model's token estimate)
    stream: bool = False  # streamed: the gateway sees its first token (the latency learner is told)
    # this request's own number, for the latency learner's bookkeeping: equal requests (same
    # model, prompt and session) are different requests, and an id() is reused once one is freed
    serial: int = field(default_factory=lambda: next(_SERIALS), compare=False, repr=False)

    @property
    def hash_key(self) -> int | None:
        """Key for consistent hashing: the session, else the first prompt block. XXH3, not
        Python's ``hash`` (salted per process), so every gateway replica and worker picks the
        same endpoint for a session."""
        if self.session is not None:
            return xxh3_64_intdigest(self.session.encode())
        return self.prefix_hashes[0] if self.prefix_hashes else None
