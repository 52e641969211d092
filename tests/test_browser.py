"""A real browser (Debian's Chromium, driven by selenium through the system chromedriver) reads
mockllm the two ways chat UIs do: EventSource and fetch() streaming, from a page on another origin.

.ci/run installs chromium and chromium-driver with apt-get and sets MOCKLLM_REQUIRE_BROWSER=1, so
there a missing browser fails instead of skipping.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mockllm import MockLLMServer
from mockllm.loader import load_scenarios
from mockllm.state import Options

from .conftest import ROOT, SCENARIOS, make_scenario
from .test_readme import EXAMPLES

pytestmark = pytest.mark.functional

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
REPLY = "Hello from a stream that survives a reset."


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("MOCKLLM_REQUIRE_BROWSER"):
            pytest.fail(
                "chromium and chromedriver are required here (apt-get install chromium chromium-driver)"
            )
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages served on another origin live (the README's example is written per test)."""
    root = tmp_path_factory.mktemp("pages")
    shutil.copy(Path(__file__).parent / "browser" / "page.html", root / "page.html")
    return root


@pytest.fixture(scope="module")
def page_origin(pages: Path) -> Iterator[str]:
    """The pages, served from another port: another origin than mockllm's."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(pages))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def mock(page_origin: str) -> Iterator[MockLLMServer]:
    scenarios = [
        make_scenario(name="plain", reply=REPLY, timing={"per_token": "2ms"}),
        make_scenario(
            name="reset",
            reply=REPLY,
            timing={"per_token": "2ms"},
            faults=[{"at": 12, "disconnect": "reset"}],
            wire={"retry": 100},
        ),
        make_scenario(
            name="bad-line-then-reset",
            reply=REPLY,
            timing={"per_token": "2ms"},
            faults=[{"at": 5, "malformed": "not-json"}, {"at": 12, "disconnect": "reset"}],
            wire={"retry": 100},
        ),
        make_scenario(
            name="reset-once",
            reply=REPLY,
            timing={"per_token": "2ms"},
            wire={"retry": 100},
            sequence=[{"faults": [{"at": 12, "disconnect": "reset"}]}, {}],
        ),
    ]
    with MockLLMServer(scenarios, options=Options(cors=(page_origin,))) as server:
        yield server


def run_page(
    browser: Any, page_origin: str, api: str, mode: str, scenario: str, query: str = ""
) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{page_origin}/page.html?api={api}&mode={mode}&scenario={scenario}{query}")
    WebDriverWait(browser, 15).until(
        lambda d: d.execute_script("return window.result.done || window.result.error !== null")
    )
    return dict(browser.execute_script("return window.result"))


def test_event_source_reads_the_text(browser: Any, page_origin: str, mock: MockLLMServer) -> None:
    result = run_page(browser, page_origin, mock.url, "eventsource", "plain")
    assert result["text"] == REPLY
    assert result["errors"] == 0


def test_event_source_resumes_after_a_reset_without_duplicates(
    browser: Any, page_origin: str, mock: MockLLMServer
) -> None:
    result = run_page(browser, page_origin, mock.url, "eventsource", "reset")
    assert result["text"] == REPLY  # complete, and nothing twice
    assert result["errors"] >= 1  # the reset was seen, and the browser reconnected by itself
    calls = [c for c in mock.calls if c.path == "/v1/stream"]
    assert [c.last_event_id for c in calls][:2] == [None, "13"]  # the role chunk and 12 tokens
    assert calls[0].outcome == "fault:reset"


def test_event_source_ids_count_a_bad_line_and_resume_loses_nothing(
    browser: Any, page_origin: str, mock: MockLLMServer
) -> None:
    result = run_page(browser, page_origin, mock.url, "eventsource", "bad-line-then-reset")
    assert result["text"] == REPLY  # the token after the bad line's id is not skipped (issue 20)
    assert result["unparsed"] == 1
    calls = [c for c in mock.calls if c.path == "/v1/stream"]
    assert [c.last_event_id for c in calls][:2] == [None, "14"]  # the role chunk, 12 tokens and the bad line
    assert calls[1].tokens_sent == len(REPLY) - 12


def test_event_source_without_resume_replays_from_the_start(
    browser: Any, page_origin: str, mock: MockLLMServer
) -> None:
    result = run_page(browser, page_origin, mock.url, "eventsource", "reset-once", "&resume=0")
    assert result["text"] == REPLY[:12] + REPLY  # what a chat UI shows against a server without resume
    calls = [c for c in mock.calls if c.path == "/v1/stream"]
    assert [c.last_event_id for c in calls] == [None, None]  # no ids, so nothing to send back


def test_fetch_streaming_from_another_origin_needs_cors(
    browser: Any, page_origin: str, mock: MockLLMServer
) -> None:
    result = run_page(browser, page_origin, mock.url, "fetch", "plain")
    assert (result["text"], result["error"]) == (REPLY, None)
    with MockLLMServer([make_scenario(name="plain", reply=REPLY)]) as no_cors:
        blocked = run_page(browser, page_origin, no_cors.url, "fetch", "plain")
    assert blocked["text"] == ""
    assert "Failed to fetch" in blocked["error"]


def test_the_readmes_front_end_example_runs(browser: Any, pages: Path, page_origin: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (example,) = [code for kind, code in EXAMPLES if kind == "html"]
    slow = SCENARIOS / "slow.yaml"
    with MockLLMServer(slow, time_scale=0.02, options=Options(cors=(page_origin,))) as server:
        (pages / "readme.html").write_text(
            example.replace("http://127.0.0.1:8000", server.url), encoding="utf-8"
        )
        browser.get(f"{page_origin}/readme.html")
        WebDriverWait(browser, 15).until(lambda d: d.title == "done")
        text = browser.find_element(By.ID, "reply").text
    (expected,) = load_scenarios([slow])
    assert text == "".join(expected.tokens).strip()  # the whole reply (DOM text drops outer whitespace)


ARTIFACTS = Path(os.environ.get("MOCKLLM_ARTIFACTS", ROOT / "tests" / "artifacts"))


@pytest.mark.parametrize("mode", ["fetch", "eventsource"])
def test_the_playground_plays_a_scenario(browser: Any, mode: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    scenarios = [
        SCENARIOS / "slow.yaml",
        make_scenario(name="plain", reply=REPLY, timing={"per_token": "2ms"}),
    ]
    with MockLLMServer(scenarios, time_scale=0.05) as server:
        browser.set_window_size(1280, 900)
        browser.get(f"{server.url}/")
        wait = WebDriverWait(browser, 15)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "scenario")).options) == 2)
        Select(browser.find_element(By.ID, "scenario")).select_by_value("slow")
        wait.until(lambda d: d.find_element(By.ID, "description").text.startswith("Chinese text at 100 ms"))
        Select(browser.find_element(By.ID, "mode")).select_by_value(mode)
        browser.find_element(By.ID, "play").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "finished")
        reply = browser.find_element(By.ID, "reply").text
        status = browser.find_element(By.ID, "status").text
        raw = browser.find_element(By.ID, "raw").text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"playground-{mode}.png"))
    (slow,) = load_scenarios([SCENARIOS / "slow.yaml"])
    assert reply == "".join(slow.tokens).strip()
    assert status.startswith("done after")
    assert "data: [DONE]" in raw


@pytest.mark.parametrize("mode", ["fetch", "eventsource"])
def test_the_playground_sends_the_api_key(browser: Any, mode: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    plain = make_scenario(name="plain", reply=REPLY, timing={"per_token": "1ms"})
    with MockLLMServer([plain], options=Options(api_key="k-play")) as server:
        browser.get(f"{server.url}/")
        wait = WebDriverWait(browser, 15)
        wait.until(lambda d: "HTTP 401" in d.find_element(By.ID, "status").text)  # no key yet
        key = browser.find_element(By.ID, "apikey")
        key.send_keys("k-play")
        browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "scenario")).options) == 1)
        Select(browser.find_element(By.ID, "mode")).select_by_value(mode)
        browser.find_element(By.ID, "play").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "finished")
        assert browser.find_element(By.ID, "reply").text == REPLY
        assert browser.find_element(By.ID, "status").text.startswith("done after")
        # the page itself and the model list (again on the key field's blur) are not the play
        played = [
            c.path
            for c in server.calls
            if c.status == 200 and c.path in ("/v1/stream", "/v1/chat/completions")
        ]
    assert played == ["/v1/stream" if mode == "eventsource" else "/v1/chat/completions"]
