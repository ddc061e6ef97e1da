"""Metrics (``rt.metrics()``), the observation endpoint (Prometheus text, JSON),
``python -m subactor top``, and the live view in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import subactor
from sa_actors import Counter, Echo, Logs, Raiser, Sleeper, Stateful


def eventually(what: str, cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.01)


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def actor(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    found = [a for a in snapshot["actors"] if a["name"] == name]
    assert found, f"no actor {name!r} in {snapshot['actors']}"
    return found[0]


@pytest.fixture
def observed() -> Iterator[subactor.Runtime]:
    runtime = subactor.Runtime(observe="127.0.0.1:0")
    try:
        yield runtime
    finally:
        runtime.close()


def test_metrics_off_still_list_the_actors(rt: subactor.Runtime) -> None:
    rt.spawn(Echo, name="e").ask(1)
    m = rt.metrics()
    assert m["enabled"] is False
    e = actor(m, "e")
    assert (e["placement"], e["state"], e["handled"], e["kind"]) == ("interpreter", "running", 0, "PyActor")
    assert rt.observe_url is None


def test_metrics_count_messages_failures_and_restarts() -> None:
    with subactor.Runtime(metrics=True) as rt:
        c = rt.spawn(Counter, name="c")
        for _ in range(50):
            c.tell(1)
        assert c.ask(0) == 50
        r = rt.spawn(Raiser, name="r")
        with pytest.raises(subactor.RemoteError):
            r.ask("raise")
        sup = rt.spawn(subactor.SupervisorSpec([subactor.ChildSpec(Stateful, name="s")], name="sup"))
        s = sup.child(0)
        assert isinstance(s, subactor.ActorRef)
        with pytest.raises(subactor.RemoteError):
            s.ask("fail")
        eventually("the restart", lambda: s.restarts == 1)
        m = rt.metrics()
        assert m["enabled"] is True
        cm = actor(m, "c")
        assert (cm["handled"], cm["failed"], cm["restarts"]) == (51, 0, 0)
        # A sample: one in 128 while handlers take under 1 µs, 16 under 20 µs, all above.
        assert 1 <= cm["handler_seconds"]["count"] <= 51
        assert actor(m, "r")["failed"] == 1
        sm = actor(m, "s")
        assert (sm["restarts"], sm["parent"], sm["failed"]) == (1, actor(m, "sup")["id"], 1)
        assert "failing on purpose" in sm["last_failure"]["message"]
        assert m["totals"]["handled"] >= 53
        assert m["spawn_seconds"]["interpreter"]["count"] >= 3


def test_process_actors_are_counted_by_the_same_loop() -> None:
    with subactor.Runtime(metrics=True) as rt:
        p = rt.spawn(Counter, name="p", placement="process")
        for _ in range(20):
            p.tell(1)
        assert p.ask(0) == 20
        pm = actor(rt.metrics(), "p")
        assert (pm["placement"], pm["handled"]) == ("process", 21)
        # Tells reach a process actor in batches: the child times each handler and the
        # parent records every time (the ask: sampled, as in an interpreter).
        assert 20 <= pm["handler_seconds"]["count"] <= 21
        slow = rt.spawn(Sleeper, name="slow", placement="process")
        for _ in range(5):
            slow.tell(0.02)
        assert slow.ask(0) == 0
        sm = actor(rt.metrics(), "slow")
        assert sm["handled"] == 6 and sm["handler_seconds"]["count"] >= 5
        # The child's times: at least the sleeps, not the round trips' share alone.
        assert sm["handler_seconds"]["sum"] >= 5 * 0.02


def test_the_endpoint_serves_prometheus_text_and_json(observed: subactor.Runtime) -> None:
    url = observed.observe_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    c = observed.spawn(Counter, name="c")
    for _ in range(10):
        c.tell(2)
    assert c.ask(0) == 20
    kind, body = get(url + "metrics")
    assert kind.startswith("text/plain; version=0.0.4")
    line = next(
        (l for l in body.splitlines() if l.startswith("subactor_actor_messages_handled_total{") and 'actor="c"' in l),
        None,
    )
    assert line is not None, body
    assert 'placement="interpreter"' in line and line.endswith(" 11")
    kind, body = get(url + "api/metrics")
    assert kind == "application/json"
    assert actor(json.loads(body), "c")["handled"] == 11
    _, page = get(url)
    assert "<title>subactor: live view</title>" in page


def test_bad_observe_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="not an address"):
        subactor.Runtime(observe="nowhere")
    with pytest.raises(TypeError, match="observe"):
        subactor.Runtime(observe=9464)  # type: ignore[arg-type]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(OSError, match="cannot listen"):
            subactor.Runtime(observe=f"127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()


def test_top_prints_the_tree(observed: subactor.Runtime) -> None:
    spec = subactor.SupervisorSpec(
        [subactor.ChildSpec(Echo, name="worker-a"), subactor.ChildSpec(Echo, name="worker-b")], name="pool"
    )
    observed.spawn(spec)
    assert observed.observe_url is not None
    out = subprocess.run(
        [sys.executable, "-m", "subactor", "top", "--once", "--url", observed.observe_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("subactor  actors 3"), out
    assert any(l.startswith("pool ") for l in lines), out
    assert any(l.startswith("├─ worker-a ") and "interpreter" in l for l in lines), out
    assert any(l.startswith("└─ worker-b ") for l in lines), out
    # Nothing listening there: a clear error, exit status 1.
    gone = subprocess.run(
        [sys.executable, "-m", "subactor", "top", "--once", "--url", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert gone.returncode == 1 and "cannot read http://127.0.0.1:1/api/metrics" in gone.stderr


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_logging_in_actors_without_a_tracing_subscriber_goes_to_stderr(
    rt: subactor.Runtime, placement: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # A Python program has no tracing subscriber: an actor's records go where Python
    # sends them without a handler (logging.lastResort: stderr, WARNING and up).
    logs = rt.spawn(Logs, placement=placement)
    assert logs.ask(("INFO", "quietly"), timeout=10) == "quietly"
    assert logs.ask(("WARNING", f"out loud in an {placement}"), timeout=10) == f"out loud in an {placement}"
    logs.stop()
    logs.wait(timeout=10)
    err = capfd.readouterr().err
    assert f"logged out loud in an {placement}" in err
    assert "quietly" not in err


# ---- the live view in a browser -----------------------------------------------------------

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless chromium, driven through its chromedriver (the python lane,
    scripts/lanes/python, installs both with apt-get)."""
    assert CHROMIUM and CHROMEDRIVER, "the live view's test needs Debian's chromium and chromium-driver"
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_live_view_shows_actors_and_a_restart(observed: subactor.Runtime, browser: Any) -> None:
    spec = subactor.SupervisorSpec([subactor.ChildSpec(Stateful, name="flaky")], name="pool")
    sup = observed.spawn(spec)
    steady = observed.spawn(Counter, name="steady")
    assert observed.observe_url is not None
    browser.get(observed.observe_url)

    # The page redraws its rows on every event: each read is one script, so that an
    # element never goes stale between finding it and reading it.
    def text(selector: str) -> str:
        found = browser.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null", selector
        )
        return "" if found is None else str(found).strip()

    def cell(name: str, column: str) -> str:
        return text(f'tr.actor[data-name="{name}"] td.{column}')

    eventually("the page lists the actors", lambda: cell("flaky", "restarts") == "0", timeout=20)
    assert text("#status") == "live"
    assert "interpreter" in text('tr[data-name="flaky"] .placement')
    assert cell("flaky", "state") == "running"
    # The tree: the child is drawn under its supervisor.
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr.actor'), r => r.getAttribute('data-name'))"
    )
    assert names.index("pool") + 1 == names.index("flaky"), names
    assert "└─" in cell("flaky", "name")
    # Messages show up as counts and a rate.
    for _ in range(200):
        steady.tell(1)
    eventually("the handled count", lambda: cell("steady", "handled") == "200")
    # A restart (a tell that fails: also a dead letter), seen on the page.
    flaky = sup.child(0)
    assert isinstance(flaky, subactor.ActorRef)
    failed_at = time.monotonic()
    flaky.tell("fail")
    eventually("the restart on the page", lambda: cell("flaky", "restarts") == "1")
    seen_after = time.monotonic() - failed_at
    print(f"restart shown {seen_after * 1000:.0f} ms after the failing tell")
    assert "failing on purpose" in cell("flaky", "failure")
    eventually("the dead letter in the feed", lambda: "flaky" in text("#dead-letters"))
    assert "Failed" in text("#dead-letters")
    # The rate plot fills from the history (one point a second).
    eventually(
        "points in the rate plot",
        lambda: len(str(browser.execute_script(
            "const e = document.getElementById('rate-line'); return e ? e.getAttribute('points') || '' : ''"
        )).split()) >= 2,
    )
