"""The probe's reading of /v1/models (pure parts; the probe against real servers and closed
ports is in tests/e2e/test_cli_errors.py and tests/e2e/test_check_cli.py)."""

from __future__ import annotations

import pytest

from kubellm.bench.errors import TargetError
from kubellm.bench.probe import choose_model, served_models

URL = "http://127.0.0.1:8000"


def test_the_model_asked_for_or_the_first_served() -> None:
    served = served_models({"object": "list", "data": [{"id": "a"}, {"id": "b"}]})
    assert served == ["a", "b"]
    assert choose_model(URL, served, "b") == "b"
    assert choose_model(URL, served, None) == "a"


@pytest.mark.parametrize(("served", "wanted", "words"), [
    (["a", "b"], "c", ["model 'c' is not served at http://127.0.0.1:8000", "it serves: a, b", "--model"]),
    ([], None, ["no model is served", "it serves: no model"]),
])
def test_a_model_not_served_is_named_with_what_is(served: list[str], wanted: str | None, words: list[str]) -> None:
    with pytest.raises(TargetError) as raised:
        choose_model(URL, served, wanted)
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize("body", [None, [], {"data": "x"}, "<html>"])
def test_an_answer_that_is_not_a_model_list_says_it_is_not_openai_compatible(body: object) -> None:
    with pytest.raises(TargetError, match="not an OpenAI model list"):
        served_models(body)
