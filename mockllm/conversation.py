"""One request model for every wire format: what a client asked, whatever API it spoke.

Each format's request parser (:mod:`mockllm.formats`) reads its own body into a
:class:`Conversation`: the system text, the messages (role, text, the tool calls an assistant made,
the tool results sent back), the tools offered, the model and the stream flag. Matching
(:mod:`mockllm.match`), prompt-token counting and the call log read only this object, so a new
format gets all three by writing one parser.

Roles are normalised: ``user``, ``assistant`` and ``tool`` (a tool result: OpenAI ``role: tool``,
an Anthropic ``tool_result`` block, a Responses ``function_call_output``, Ollama ``role: tool``).
System and developer messages are folded into :attr:`Conversation.system`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Role = str  # "user", "assistant" or "tool"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    text: str = ""
    #: The names of the tools an assistant message called.
    tool_calls: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.tool_calls:
            out["tool_calls"] = list(self.tool_calls)
        return out


@dataclass(frozen=True, slots=True)
class Conversation:
    model: str
    stream: bool = False
    system: str = ""
    messages: tuple[Message, ...] = ()
    #: The names of the tools the request offers.
    tools: tuple[str, ...] = ()

    @property
    def last_user(self) -> str | None:
        """The text of the last user message that has text (``None``: there is none)."""
        return next((m.text for m in reversed(self.messages) if m.role == "user" and m.text), None)

    @property
    def tool_result(self) -> str | None:
        """The content of the last message when it is a tool result, else ``None``."""
        last = self.messages[-1] if self.messages else None
        return last.text if last is not None and last.role == "tool" else None

    @property
    def turn(self) -> int:
        """How many assistant messages the history holds (0 on an agent's first call)."""
        return sum(1 for m in self.messages if m.role == "assistant")

    @property
    def prompt_tokens(self) -> int:
        """The documented rule: one token per 4 characters of system and message text, rounded
        up (OpenAI's own rule of thumb), and at least 1."""
        size = len(self.system) + sum(len(m.text) for m in self.messages)
        return max(1, -(-size // 4))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stream": self.stream,
            "system": self.system,
            "messages": [m.to_dict() for m in self.messages],
            "tools": list(self.tools),
        }


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined (``text``,
    ``input_text`` and ``output_text`` parts all carry a ``text``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def tool_names(tools: Any) -> tuple[str, ...]:
    """The names of the tools offered: ``{"name": …}`` (Anthropic, Responses) or
    ``{"function": {"name": …}}`` (OpenAI chat, Ollama)."""
    if not isinstance(tools, list):
        return ()
    names = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str):
            names.append(name)
    return tuple(names)


def called(tool_calls: Any) -> tuple[str, ...]:
    """The names in an assistant message's ``tool_calls`` (OpenAI chat, Ollama)."""
    return tool_names(tool_calls)


def chat_history(messages: list[Any]) -> tuple[str, tuple[Message, ...]]:
    """``(system, messages)`` of an OpenAI-chat-style ``messages`` list (OpenAI chat, Ollama):
    ``system``/``developer`` messages are the system text; ``tool`` messages are tool results."""
    system: list[str] = []
    history: list[Message] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, text = message.get("role"), text_of(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role == "assistant":
            history.append(Message("assistant", text, called(message.get("tool_calls"))))
        elif role in ("user", "tool"):
            history.append(Message(role, text))
    return "\n".join(system), tuple(history)
