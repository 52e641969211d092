"""The pytest plugin, tested the way users meet it: test files run by pytester against the
installed plugin (loaded through its pytest11 entry point)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.functional

SLOW = """
name: slow
reply: "慢慢来"
timing: {first_token: 2s, per_token: 2s}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", **{"scenarios/slow": SLOW})
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_sync_sdk_marker_and_call_log(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import openai, pytest
        from mockllm import MockLLM

        @pytest.mark.mockllm(scenario="scenarios/slow.yaml", time_scale=0)
        def test_streams(mockllm: MockLLM):
            client = openai.OpenAI(base_url=mockllm.openai_base_url, api_key="x")
            stream = client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": "hi"}], stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream)
            assert text == mockllm.scenario.reply_text == "慢慢来"
            assert mockllm.calls.call_count == 1
            assert mockllm.calls.last.json["messages"][-1]["content"] == "hi"
            assert mockllm.calls.last.scenario == "slow"
        """
    )
    result = project.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_async_sdk_and_httpx_sse(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import httpx, httpx_sse, openai, pytest

        async def test_async_sdk(mockllm):
            mockllm.use({"reply": "async ok"})
            client = openai.AsyncOpenAI(base_url=mockllm.openai_base_url, api_key="x")
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
            assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "async ok"
            await client.close()

        def test_httpx_sse(mockllm):
            mockllm.use("reply: yaml text\\nname: inline-yaml\\n")
            with httpx.Client() as client, httpx_sse.connect_sse(
                client, "POST", mockllm.openai_base_url + "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True},
            ) as source:
                events = [e.data for e in source.iter_sse()]
            assert events[-1] == "[DONE]"
            assert mockllm.calls.last.scenario == "inline-yaml"
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_each_test_starts_clean(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import httpx

        BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}

        def test_first(mockllm):
            mockllm.use({"reply": "ok", "sequence": [{"status": 503}, {}]})
            url = mockllm.openai_base_url + "/chat/completions"
            assert [httpx.post(url, json=BODY).status_code for _ in range(2)] == [503, 200]
            assert [c.status for c in mockllm.calls] == [503, 200]

        def test_second_sees_none_of_it(mockllm):
            assert mockllm.calls.call_count == 0
            assert mockllm.scenario.name == "default"   # the built-in scenario again

        def test_third_sequence_starts_over(mockllm):
            mockllm.use({"reply": "ok", "sequence": [{"status": 503}, {}]})
            assert httpx.post(mockllm.openai_base_url + "/chat/completions", json=BODY).status_code == 503
        """
    )
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("args", "env", "fast"),
    [([], None, False), (["--mockllm-time-scale", "0"], None, True), ([], "0", True)],
)
def test_time_scale_option_and_env(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None, fast: bool
) -> None:
    if env is not None:
        monkeypatch.setenv("MOCKLLM_TIME_SCALE", env)
    project.makepyfile(
        f"""
        import time, httpx, pytest

        @pytest.mark.mockllm(scenario="scenarios/slow.yaml")
        def test_speed(mockllm):
            assert mockllm.time_scale == {0.0 if fast else 1.0}
            if {fast}:
                start = time.monotonic()
                r = httpx.post(mockllm.openai_base_url + "/chat/completions",
                               json={{"model": "m", "messages": [{{"role": "user", "content": "x"}}]}})
                assert r.json()["choices"][0]["message"]["content"] == "慢慢来"
                assert time.monotonic() - start < 2   # 6 s of scripted delays, collapsed
        """
    )
    project.runpytest(*args).assert_outcomes(passed=1)


def test_marker_time_scale_wins_and_bad_marker_arguments_are_refused(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.mockllm(time_scale=3)
        def test_marker_wins(mockllm):
            assert mockllm.time_scale == 3

        @pytest.mark.mockllm(scenario_file="x.yaml")
        def test_typo(mockllm):
            pass
        """
    )
    result = project.runpytest("--mockllm-time-scale", "0")
    result.assert_outcomes(passed=1, errors=1)
    assert "@pytest.mark.mockllm got unknown arguments ['scenario_file']" in result.stdout.str()


def test_default_scenarios_can_be_overridden_by_a_fixture(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest

        @pytest.fixture
        def mockllm_scenarios():
            return "scenarios/"
        """
    )
    project.makepyfile(
        """
        def test_uses_the_directory(mockllm):
            assert [s.name for s in mockllm.scenarios] == ["slow"]
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_an_error_inside_the_server_fails_the_test_with_its_traceback(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import httpx
        from mockllm.formats import openai_chat

        def broken(self, event):
            raise RuntimeError("encoder exploded")

        def test_hits_a_bug(mockllm, monkeypatch):
            monkeypatch.setattr(openai_chat.OpenAIChatEncoder, "payloads", broken)
            httpx.post(mockllm.openai_base_url + "/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True})
            # the client saw a dropped stream; the test itself would pass without the plugin

        def test_next_one_is_clean(mockllm):
            assert mockllm.calls.call_count == 0
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*def broken(self, event):*",
            "*RuntimeError: encoder exploded",
            "*raised inside the mockllm server while this test ran*",
        ]
    )


def test_strict_markers_and_help(project: pytest.Pytester) -> None:
    result = project.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.mockllm(scenario=None, scenarios=None, time_scale=None, strict=False)*"]
    )
    help_text = project.runpytest("--help")
    help_text.stdout.fnmatch_lines(["*--mockllm-time-scale=FACTOR*"])


def test_installed_entry_point_loads_the_plugin(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_fixture_exists(mockllm):
            assert mockllm.url.startswith("http://127.0.0.1:")
        """
    )
    project.runpytest_subprocess("--strict-markers").assert_outcomes(passed=1)


def test_a_scenario_path_that_does_not_exist_is_no_such_file(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest
        from mockllm import MockLLMServer, ScenarioError

        @pytest.mark.mockllm(scenario="scenarios/slw.yaml")
        def test_marker(mockllm):
            pass

        def test_use(mockllm):
            with pytest.raises(ScenarioError) as caught:
                mockllm.use("tests/nope.yaml")
            assert str(caught.value).startswith("tests/nope.yaml: no such file or directory (")

        def test_server():
            with pytest.raises(ScenarioError) as caught:
                MockLLMServer("scenarios/slw.yaml")
            assert str(caught.value).startswith("scenarios/slw.yaml: no such file or directory (")
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    message = f"scenarios/slw.yaml: no such file or directory (relative to {project.path})"
    result.stdout.fnmatch_lines([f"E * mockllm.errors.ScenarioError: {message}"])


def test_strict_marker_fails_an_unscripted_request_and_shows_why(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import openai, pytest

        AGENT = '''
        - name: ask-weather
          match: {last_user: {contains: weather, ignore_case: true}}
          reply: Let me check.
        - name: other
          reply: unscripted
        '''

        @pytest.mark.mockllm(scenario=AGENT, strict=True)
        def test_strict(mockllm):
            client = openai.OpenAI(base_url=mockllm.openai_base_url, api_key="x", max_retries=0)
            reply = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "The weather?"}])
            assert reply.choices[0].message.content == "Let me check."
            assert (mockllm.calls.last.reason, mockllm.calls.last.why) == (
                "match", "ask-weather: last_user held")
            with pytest.raises(openai.NotFoundError) as caught:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])
            assert "ask-weather: last_user does not contain 'weather' (it was 'hello')" in str(caught.value)

        @pytest.mark.mockllm(scenario=AGENT)
        def test_not_strict_after(mockllm):
            client = openai.OpenAI(base_url=mockllm.openai_base_url, api_key="x", max_retries=0)
            reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}])
            assert reply.choices[0].message.content == "unscripted"
            assert mockllm.calls.last.reason == "default"
        """
    )
    result = project.runpytest("--strict-markers")
    result.assert_outcomes(passed=2)
