"""Seeded request generators: the same options and seed always give the same requests.

Prompt text is built from a vocabulary of short common English words, each of which
tokenizes to one token in the usual BPE vocabularies, so N words is close to N tokens;
the servers' own ``usage`` counts are what the reports use.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubellm.bench.errors import WorkloadError

_VOCABULARY = (
    "the of and to in is it you that he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which she "
    "do how their if will up other about out many then them these so some her would make like him "
    "into time has look two more write go see number no way could people my than first water been "
    "call who oil its now find long down day did get come made may part"
).split()

WorkloadKind = Literal["synthetic", "shared-prefix", "multi-turn", "dataset"]


class Length(BaseModel):
    """A token count: fixed when ``low == high``, else uniform in ``[low, high]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Length:
        if self.high < self.low:
            raise ValueError(f"length range {self.low}:{self.high} is reversed; write LOW:HIGH")
        return self

    @classmethod
    def parse(cls, text: str) -> Length:
        """Read ``"128"`` (fixed) or ``"64:256"`` (uniform range)."""
        parts = text.split(":")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise WorkloadError(f"length {text!r} is not N or LOW:HIGH (whole numbers)") from None
        if len(numbers) not in (1, 2):
            raise WorkloadError(f"length {text!r} is not N or LOW:HIGH")
        try:
            return cls(low=numbers[0], high=numbers[-1])
        except ValidationError as err:
            raise WorkloadError(f"length {text!r}: {err.errors()[0]['msg']}") from None

    def draw(self, rng: random.Random) -> int:
        return self.low if self.low == self.high else rng.randint(self.low, self.high)


class WorkloadConfig(BaseModel):
    """What requests to send; ``seed`` makes every draw reproducible."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: WorkloadKind = "synthetic"
    prompt_tokens: Length = Length(low=128, high=128)
    output_tokens: Length = Length(low=64, high=64)
    prefix_count: int = Field(default=4, ge=1, description="shared-prefix: distinct system prompts")
    prefix_tokens: int = Field(default=256, ge=1, description="shared-prefix: tokens per prefix")
    turns: int = Field(default=3, ge=1, description="multi-turn: turns per conversation")
    dataset: Path | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _dataset_given(self) -> WorkloadConfig:
        if (self.kind == "dataset") != (self.dataset is not None):
            raise ValueError("a dataset file is needed exactly when the workload kind is 'dataset'")
        return self


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One chat request to send: the messages, the output budget, and where it came from."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int
    conversation: int | None = None
    turn: int = 0


def words(rng: random.Random, count: int) -> str:
    """*count* vocabulary words drawn with *rng*."""
    return " ".join(rng.choices(_VOCABULARY, k=count))


def generate(config: WorkloadConfig, count: int) -> list[RequestSpec]:
    """The first *count* requests of the workload *config* describes."""
    if count < 1:
        raise WorkloadError(f"request count must be at least 1, got {count}")
    rng = random.Random(config.seed)
    if config.kind == "synthetic":
        return [_single(rng, config, ()) for _ in range(count)]
    if config.kind == "shared-prefix":
        return _shared_prefix(rng, config, count)
    if config.kind == "multi-turn":
        return _multi_turn(rng, config, count)
    assert config.dataset is not None  # checked by WorkloadConfig
    return _from_dataset(rng, load_dataset(config.dataset), count)


def _single(
    rng: random.Random, config: WorkloadConfig, prefix: tuple[dict[str, str], ...]
) -> RequestSpec:
    user = {"role": "user", "content": words(rng, config.prompt_tokens.draw(rng))}
    return RequestSpec(messages=(*prefix, user), max_tokens=config.output_tokens.draw(rng))


def _shared_prefix(rng: random.Random, config: WorkloadConfig, count: int) -> list[RequestSpec]:
    prefixes = [
        ({"role": "system", "content": words(rng, config.prefix_tokens)},)
        for _ in range(config.prefix_count)
    ]
    return [_single(rng, config, rng.choice(prefixes)) for _ in range(count)]


def _multi_turn(rng: random.Random, config: WorkloadConfig, count: int) -> list[RequestSpec]:
    """Conversations interleaved round-robin, so turn k of one follows turn k-1 by a lap.

    The assistant turns in the history are seeded text of the drawn output length (not the
    server's replies), which keeps the workload reproducible and the arrivals open-loop.
    """
    conversations = -(-count // config.turns)
    histories: list[list[dict[str, str]]] = [[] for _ in range(conversations)]
    requests: list[RequestSpec] = []
    for turn in range(config.turns):
        for conv, history in enumerate(histories):
            if len(requests) == count:
                return requests
            history.append({"role": "user", "content": words(rng, config.prompt_tokens.draw(rng))})
            max_tokens = config.output_tokens.draw(rng)
            requests.append(RequestSpec(tuple(history), max_tokens, conversation=conv, turn=turn))
            history.append({"role": "assistant", "content": words(rng, max_tokens)})
    return requests


def _from_dataset(rng: random.Random, rows: list[RequestSpec], count: int) -> list[RequestSpec]:
    """*count* rows in a seeded order, cycling through the file when it is shorter."""
    order = list(range(len(rows)))
    picked: list[RequestSpec] = []
    while len(picked) < count:
        rng.shuffle(order)
        picked.extend(rows[i] for i in order[: count - len(picked)])
    return picked


def load_dataset(path: Path) -> list[RequestSpec]:
    """Read a JSONL file of chat requests: ``{"messages": [...], "max_tokens": N}`` per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise WorkloadError(f"cannot read dataset {path}: {err.strerror}") from None
    rows = [_dataset_row(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise WorkloadError(f"dataset {path} has no requests (one JSON object per line)")
    return rows


def _dataset_row(path: Path, number: int, line: str) -> RequestSpec:
    where = f"dataset {path} line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise WorkloadError(f"{where}: not JSON ({err.msg})") from None
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        raise WorkloadError(f"{where}: needs a non-empty 'messages' list")
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise WorkloadError(f"{where}: each message needs string 'role' and 'content'")
    max_tokens = row.get("max_tokens", 128)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise WorkloadError(f"{where}: 'max_tokens' must be a positive whole number")
    clean = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    return RequestSpec(messages=clean, max_tokens=max_tokens)
