"""Reading Gemini request bodies (``GenerateContentRequest``, ``CountTokensRequest``) into the
shared :class:`~mockllm.conversation.Conversation`.

https://ai.google.dev/api/generate-content: ``contents`` is a list of ``Content`` (``role``
``user`` or ``model``, ``parts``); a part is ``text``, ``functionCall`` (``name``, ``args``),
``functionResponse`` (``name``, ``response``) or media this server does not read.
``systemInstruction`` is a ``Content`` whose text is the system text; the tools offered are the
names in ``tools[].functionDeclarations``. The proto JSON mapping accepts the snake_case names too
(``system_instruction``, ``function_declarations``), so they are read as well.

Normalised: a ``model`` turn is the assistant's (its ``functionCall`` parts its tool calls); each
``functionResponse`` is a tool message of its own, before the turn's text; its text is the
``response`` object's only string value when it has one (``{"result": "..."}``, as clients wrap a
tool's text), else the object as compact JSON. Errors say where, in Google's words
(``Invalid value at 'contents[0].parts'``), and become 400 ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from typing import Any

from ..conversation import Conversation, Message
from ..encoder import dumps
from . import RequestError

CONTENT = "type.googleapis.com/google.ai.generativelanguage.v1beta.Content"
PART = "type.googleapis.com/google.ai.generativelanguage.v1beta.Part"
TOOL = "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool"


def _invalid(where: str, expected: str, value: Any) -> RequestError:
    shown = dumps(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return RequestError(400, f"Invalid value at '{where}' ({expected}), {shown}", param=where)


def _field(body: dict[str, Any], name: str, snake: str) -> Any:
    return body[name] if name in body else body.get(snake)


def read_conversation(body: Any, model: str, stream: bool, *, count: bool = False) -> Conversation:
    """The conversation of a ``generateContent`` body (``count``: a ``countTokens`` body, whose
    contents may be empty or given inside ``generateContentRequest``)."""
    if not isinstance(body, dict):
        raise RequestError(
            400, 'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        )
    if count:
        inner = _field(body, "generateContentRequest", "generate_content_request")
        if inner is not None and "contents" not in body:
            if not isinstance(inner, dict):
                raise _invalid(
                    "generate_content_request",
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest",
                    inner,
                )
            return read_conversation(inner, model, stream)
    contents = body.get("contents")
    if contents is None or contents == []:
        if count:
            contents = []
        else:
            raise RequestError(
                400, "* GenerateContentRequest.contents: contents is not specified\n", param="contents"
            )
    if not isinstance(contents, list):
        raise _invalid("contents", CONTENT, contents)
    history: list[Message] = []
    for index, content in enumerate(contents):
        history += _turn(content, f"contents[{index}]")
    system = _system(_field(body, "systemInstruction", "system_instruction"))
    tools = _tools(body.get("tools"))
    return Conversation(model, stream, system, tuple(history), tools)


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, dict):
        raise _invalid(where, CONTENT, content)
    parts = content.get("parts")
    if parts is None or parts == []:
        raise RequestError(
            400,
            f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n",
            param=f"{where}.parts",
        )
    if not isinstance(parts, list):
        raise _invalid(f"{where}.parts", PART, parts)
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _invalid(f"{where}.parts[{index}]", PART, part)
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise _invalid(f"{where}.parts[{index}].text", "TYPE_STRING", text)
        for key, snake in (("functionCall", "function_call"), ("functionResponse", "function_response")):
            value = _field(part, key, snake)
            if value is not None and not (isinstance(value, dict) and isinstance(value.get("name"), str)):
                raise _invalid(f"{where}.parts[{index}].{snake}", f"a {key} with a name", value)
    return parts


def _turn(content: Any, where: str) -> list[Message]:
    parts = _parts(content, where)
    role = content.get("role", "user")
    if role not in ("user", "model", "function"):  # "function": the v1beta turn of tool results
        raise RequestError(400, "Please use a valid role: user, model.", param=f"{where}.role")
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
    if role == "model":
        calls = tuple(_field(p, "functionCall", "function_call")["name"] for p in parts if _call(p))
        return [Message("assistant", text, calls)]
    out = [
        Message("tool", _result_text(_field(p, "functionResponse", "function_response").get("response")))
        for p in parts
        if _field(p, "functionResponse", "function_response") is not None
    ]
    if text or not out:
        out.append(Message("user", text))
    return out


def _call(part: dict[str, Any]) -> bool:
    return _field(part, "functionCall", "function_call") is not None


def _result_text(response: Any) -> str:
    if isinstance(response, dict):
        strings = [v for v in response.values() if isinstance(v, str)]
        if len(response) == 1 and strings:
            return strings[0]
    return "" if response is None else dumps(response)


def _system(instruction: Any) -> str:
    if instruction is None:
        return ""
    if isinstance(instruction, str):  # not the REST shape, but what a hand-written client sends
        return instruction
    parts = _parts(instruction, "system_instruction")
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str))


def _tools(tools: Any) -> tuple[str, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise _invalid("tools", TOOL, tools)
    names: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid(f"tools[{index}]", TOOL, tool)
        declarations = _field(tool, "functionDeclarations", "function_declarations") or []
        if not isinstance(declarations, list):
            raise _invalid(
                f"tools[{index}].function_declarations", "a list of FunctionDeclaration", declarations
            )
        names += [d["name"] for d in declarations if isinstance(d, dict) and isinstance(d.get("name"), str)]
    return tuple(names)
