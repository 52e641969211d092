"""The verdict: what the clients of a whole run did about the faults they met, for CI in any language.

The pytest helpers (``calls.assert_retry_after_honoured()`` and the rest) check one test's calls
when the test asks. ``mockllm exec --verdict`` and ``GET /_mockllm/verdict`` run the same checks
over every call of a run, with the same stories, one finding per violation. Each check is one
function over the calls, registered in :data:`CHECKS` by the name ``--verdict`` takes:

- ``retry``: a call that failed with a retryable status (408, 409, 429, 5xx) or a stream fault was
  retried at least once (a client that retried and then gave up is not faulted for giving up);
- ``retry-after``: no retry came sooner than the ``Retry-After`` of the call it retried;
- ``truncation``: no truncated stream (no finish, no ``[DONE]``) was accepted without a retry;
- ``abort``: no client waited more than ``abort_within`` seconds after the last byte before hanging
  up (a stalled stream needs a read timeout);
- ``last-event-id``: an EventSource that reconnected after a cut sent ``Last-Event-ID``.

Pure: it reads calls and writes text (JSON, JUnit XML); the server and ``exec`` call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from .calls import Call, CallLog, describe, ending, late_abort

#: Seconds a client may stay silent on a stalled stream before the ``abort`` check faults it.
ABORT_WITHIN = 30.0
#: Statuses a client should retry (OpenAI's and Anthropic's SDKs retry exactly these).
RETRYABLE = frozenset({408, 409, 429})

Check = Callable[[list[Call], float], Iterator[tuple[Call, str]]]


def _retryable(call: Call) -> bool:
    status = call.status or 0
    stream_fault = call.outcome.startswith("fault:") and call.outcome != "fault:status"
    return stream_fault or status in RETRYABLE or status >= 500


def _same(a: Call, b: Call) -> bool:
    return (a.scenario, a.path) == (b.scenario, b.path)


def check_retry(calls: list[Call], abort_within: float) -> Iterator[tuple[Call, str]]:
    for index, call in enumerate(calls):
        if not _retryable(call):
            continue
        later = next((c for c in calls[index + 1 :] if _same(c, call)), None)
        earlier = next((c for c in reversed(calls[:index]) if _same(c, call)), None)
        if later is None and not (earlier is not None and _retryable(earlier)):
            yield (
                call,
                (
                    f"call {index + 1} ({describe(call)}) ended with {ending(call)} "
                    "and the client never retried"
                ),
            )


def check_retry_after(calls: list[Call], abort_within: float) -> Iterator[tuple[Call, str]]:
    return CallLog(calls, limit=max(1, len(calls))).retry_after_ignored()


def check_truncation(calls: list[Call], abort_within: float) -> Iterator[tuple[Call, str]]:
    return CallLog(calls, limit=max(1, len(calls))).truncations_accepted()


def check_abort(calls: list[Call], abort_within: float) -> Iterator[tuple[Call, str]]:
    for index, call in enumerate(calls):
        story = late_abort(call, index + 1, abort_within)
        if story:
            yield call, story


def check_last_event_id(calls: list[Call], abort_within: float) -> Iterator[tuple[Call, str]]:
    for index, call in enumerate(calls):
        if call.method != "GET" or call.path != "/v1/stream" or call.last_event_id is not None:
            continue
        earlier = next((c for c in reversed(calls[:index]) if _same(c, call)), None)
        if earlier is not None and earlier.tokens_sent and earlier.outcome.startswith("fault:"):
            yield (
                call,
                (
                    f"call {index + 1} ({describe(call)}) reconnected without Last-Event-ID after call "
                    f"{calls.index(earlier) + 1} ended with {ending(earlier)} "
                    f"after {earlier.tokens_sent} tokens: "
                    "the stream started again from the first token"
                ),
            )


CHECKS: dict[str, Check] = {
    "retry": check_retry,
    "retry-after": check_retry_after,
    "truncation": check_truncation,
    "abort": check_abort,
    "last-event-id": check_last_event_id,
}


@dataclass(frozen=True)
class Finding:
    check: str
    scenario: str
    story: str
    #: The ``X-Mockllm-Test`` scope of the calls (``None``: unscoped).
    test: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Every check over every scenario that answered a call: a case each, failed by its findings."""

    checks: tuple[str, ...]
    #: (test scope, scenario) of every case group, scope ``None`` for unscoped calls.
    scenarios: tuple[tuple[str | None, str], ...]
    findings: tuple[Finding, ...]
    calls: int

    @property
    def passed(self) -> bool:
        return not self.findings

    def cases(self) -> Iterator[tuple[str | None, str, str, list[str]]]:
        """(test scope, scenario, check, the stories of its findings) for each case."""
        for test, scenario in self.scenarios:
            for check in self.checks:
                stories = [
                    f.story for f in self.findings if (f.test, f.scenario, f.check) == (test, scenario, check)
                ]
                yield test, scenario, check, stories

    def summary(self) -> str:
        cases = len(self.checks) * len(self.scenarios)
        failed = sum(1 for *_, stories in self.cases() if stories)
        head = f"mockllm verdict: {self.calls} calls, {cases} checks ({len(self.scenarios)} scenarios × "
        return head + f"{', '.join(self.checks)}): " + (f"{failed} failed" if failed else "all passed")

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "calls": self.calls,
            "checks": list(self.checks),
            "cases": [
                {
                    **({"test": test} if test is not None else {}),
                    "scenario": scenario,
                    "check": check,
                    "passed": not stories,
                    "failures": stories,
                }
                for test, scenario, check, stories in self.cases()
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one testsuite, one testcase per check per scenario (``classname`` the
        scenario), a ``<failure>`` per case that failed with its stories."""
        cases = list(self.cases())
        suites = ElementTree.Element("testsuites")
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name="mockllm verdict",
            tests=str(len(cases)),
            failures=str(sum(1 for *_, stories in cases if stories)),
            errors="0",
            skipped="0",
        )
        for test, scenario, check, stories in cases:
            classname = f"mockllm.{test}.{scenario}" if test is not None else f"mockllm.{scenario}"
            case = ElementTree.SubElement(suite, "testcase", classname=classname, name=check)
            if stories:
                failure = ElementTree.SubElement(case, "failure", message=stories[0], type=check)
                failure.text = "\n".join(stories)
        ElementTree.indent(suites)
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            + ElementTree.tostring(suites, encoding="unicode")
            + "\n"
        )


def parse_checks(text: str) -> tuple[str, ...]:
    """``retry,abort`` → the checks; ``all`` or empty: every check. Unknown names raise ValueError."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or names == ["all"]:
        return tuple(CHECKS)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}: the checks are {', '.join(CHECKS)}")
    return tuple(dict.fromkeys(names))


def verdict(
    calls: Iterable[Call], checks: Sequence[str] = tuple(CHECKS), abort_within: float = ABORT_WITHIN
) -> Verdict:
    """Run ``checks`` over ``calls`` (finished or not: a call still open counts as not aborted
    yet), each ``X-Mockllm-Test`` scope on its own: a retry belongs to its own test."""
    log = sorted((call for call in calls if call.scenario is not None), key=lambda call: call.started)
    scopes: dict[str | None, list[Call]] = {}
    for call in log:
        scopes.setdefault(call.test, []).append(call)
    groups = tuple(dict.fromkeys((call.test, call.scenario or "") for call in log))
    findings = [
        Finding(name, call.scenario or "", story, test)
        for test, scoped in scopes.items()
        for name in checks
        for call, story in CHECKS[name](scoped, abort_within)
    ]
    return Verdict(tuple(checks), groups, tuple(findings), len(log))
