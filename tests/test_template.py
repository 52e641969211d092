"""``template: true``: replies that quote the request, checked at load, rendered per request."""

from __future__ import annotations

import openai
import pytest

from mockllm.loader import load_set
from mockllm.template import render

from .conftest import Serve


def test_render_fills_placeholders_and_keeps_other_dollars() -> None:
    values = {"last_user": "hi", "city": "Paris"}
    assert render("${last_user} from ${city}: $$5, $x, ${missing}.", values) == "hi from Paris: $5, $x, ."


def test_an_unknown_placeholder_is_a_positioned_problem() -> None:
    text = "name: t\ntemplate: true\nmatch: {last_user: {regex: 'in (?P<city>\\\\w+)'}}\nreply: '${town}'\n"
    (problem,) = load_set([text]).problems
    assert str(problem) == (
        "<string>:4:8: reply: ${town} is not a placeholder: the template knows ${last_user}, ${model}, ${city}"
    )
    assert load_set(["reply: '${town}'\n"]).problems == ()  # without template: true it is literal text


@pytest.mark.functional
def test_a_template_reply_quotes_the_request_in_a_stream(serve: Serve) -> None:
    server = serve(
        {
            "name": "weather",
            "template": True,
            "match": {"last_user": {"regex": r"weather in (?P<city>\w+)"}},
            "reply": "It is sunny in ${city} (you asked ${model}: ${last_user}). $$0",
        },
        {"name": "echo", "template": True, "reply": "${last_user}"},
    )
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x")
    stream = client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "weather in Lyon?"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "It is sunny in Lyon (you asked gpt-x: weather in Lyon?). $0"
    echo = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "say ${this}"}])
    assert echo.choices[0].message.content == "say ${this}"  # the request's text is never re-rendered
    assert echo.usage is not None
    assert echo.usage.completion_tokens == len("say ${this}")
