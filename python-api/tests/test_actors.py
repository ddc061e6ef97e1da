"""Spawning actors and talking to them from the main interpreter."""

from __future__ import annotations

import fractions
import gc
import os
import queue
import threading
import time
from pathlib import Path

import pytest

import subactor
from sa_actors import Counter, Echo, GcProbe, GilHog, Outer, Point, Raiser, Sleeper, Spinner, Stamper, Stateful

TESTS = Path(__file__).resolve().parent


def test_tell_then_ask_sees_the_tell(rt: subactor.Runtime) -> None:
    counter = rt.spawn(Counter, 0, name="c")
    counter.tell(5)
    assert counter.ask(1, timeout=5.0) == 6
    assert counter.name == "c"
    assert isinstance(counter.id, int)
    assert counter.state == "running"
    assert repr(counter) == f'<ActorRef {counter.id} "c">'


def test_spawn_by_string_path_and_nested_class(rt: subactor.Runtime) -> None:
    assert rt.spawn("sa_actors:Counter", 10).ask(1) == 11
    assert rt.spawn(f"{TESTS / 'sa_actors.py'}:Counter", 20).ask(1) == 21
    assert rt.spawn(Outer.Inner).ask(1) == ("inner", 1)
    with pytest.raises(ValueError, match="module:Class"):
        rt.spawn("no_colon_here")


def test_each_actor_has_its_own_gil(rt: subactor.Runtime) -> None:
    import threading

    hog, stamper = rt.spawn(GilHog), rt.spawn(Stamper)
    window: list[tuple[float, float]] = []
    thread = threading.Thread(target=lambda: window.append(hog.ask(1.5, timeout=30)))
    thread.start()  # pure Python for 1.5 s, never handing its GIL over
    stamp = stamper.ask(0.3, timeout=30)  # sleeps, then needs its own GIL back
    thread.join(30)
    ((start, end),) = window
    # Sharing the hog's GIL, the stamper could only have taken it after the hog's loop.
    assert start < stamp < end, (start, stamp, end)


def test_values_cross_both_ways(rt: subactor.Runtime) -> None:
    echo = rt.spawn(Echo)
    values = [
        None,
        True,
        -(2**70),
        3.5,
        "naïve",
        b"\x00\xff",
        [1, [2, (3, {4: {"five"}})]],
        frozenset({1, 2}),
        {"nested": {"dict": [None]}},
        fractions.Fraction(1, 3),  # pickled
        Point(1, 2),  # a dataclass: pickled, and importable in the actor
    ]
    for value in values:
        assert echo.ask(value) == value
    # References are values: they travel inside messages and arrive usable.
    other = rt.spawn(Counter, 100)
    (back,) = echo.ask((other,))
    assert isinstance(back, subactor.ActorRef)
    assert back == other and hash(back) == hash(other)
    assert back.ask(1) == 101


def test_unsendable_values_raise_type_error(rt: subactor.Runtime) -> None:
    echo = rt.spawn(Echo)
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(TypeError, match="contains itself"):
        echo.tell(cycle)
    with pytest.raises(TypeError, match="pickling it failed"):
        echo.ask(threading.Lock())  # (a lambda travels: by value)
    assert echo.ask("still fine") == "still fine"


def test_lookup_and_names(rt: subactor.Runtime) -> None:
    worker = rt.spawn(Echo, name="worker")
    assert rt.lookup("worker") == worker
    assert rt.lookup("nobody") is None
    with pytest.raises(subactor.SpawnError, match="already running"):
        rt.spawn(Echo, name="worker")
    worker.stop()
    worker.wait(10)
    assert rt.lookup("worker") is None
    assert rt.spawn(Echo, name="worker").ask("again") == "again"


def test_try_tell_reports_a_full_mailbox(rt: subactor.Runtime) -> None:
    busy = rt.spawn(Sleeper, mailbox=1)
    busy.tell(0.5)  # in hand
    deadline = time.monotonic() + 5
    while busy.mailbox_len and time.monotonic() < deadline:
        time.sleep(0.005)
    assert busy.try_tell(0.0) is True  # queued: the mailbox is full now
    assert busy.try_tell(0.0) is False
    busy.tell(0.0)  # waits for room instead
    assert busy.ask(0.0, timeout=10) == 0.0


def test_ask_times_out(rt: subactor.Runtime) -> None:
    slow = rt.spawn(Sleeper)
    started = time.monotonic()
    with pytest.raises(subactor.AskTimeout) as caught:
        slow.ask(1.0, timeout=0.1)
    assert time.monotonic() - started < 0.9
    assert isinstance(caught.value, TimeoutError)


def test_remote_error_carries_the_actor_traceback(rt: subactor.Runtime) -> None:
    actor = rt.spawn(Raiser)
    with pytest.raises(subactor.RemoteError) as caught:
        actor.ask("raise")
    error = caught.value
    assert error.type_name == "ValueError"
    assert error.remote_message == "raised on purpose"
    assert isinstance(error.__cause__, subactor.RemoteTraceback)
    assert "in receive" in str(error.__cause__)
    assert 'raise ValueError("raised on purpose")' in error.__cause__.traceback
    # Chained as the cause, the traceback is not repeated in the message.
    assert str(error) == "ValueError: raised on purpose"
    # The actor resumed with its state.
    assert actor.ask("ok") == 2


def test_stop_wait_and_stopped_refs(rt: subactor.Runtime) -> None:
    actor = rt.spawn(Counter)
    actor.tell(1)
    actor.stop()
    down = actor.wait(timeout=10)
    assert isinstance(down, subactor.Down)
    assert (down.id, down.kind, down.abnormal) == (actor.id, "normal", False)
    assert actor.state == "stopped"
    with pytest.raises(subactor.ActorStopped):
        actor.tell(1)
    with pytest.raises(subactor.ActorStopped):
        actor.ask(1)


def test_wait_times_out_on_a_running_actor(rt: subactor.Runtime) -> None:
    actor = rt.spawn(Echo)
    assert actor.wait(timeout=0.05) is None
    assert actor.ask("alive") == "alive"


def test_kill_interrupts_a_running_handler(rt: subactor.Runtime) -> None:
    spinner = rt.spawn(Spinner)
    spinner.tell(30.0)
    time.sleep(0.1)
    started = time.monotonic()
    spinner.kill()
    down = spinner.wait(timeout=10)
    assert down is not None and down.kind == "killed" and down.abnormal
    assert time.monotonic() - started < 5


def test_an_ask_in_flight_learns_of_the_kill(rt: subactor.Runtime) -> None:
    spinner = rt.spawn(Spinner)
    result: queue.Queue[BaseException] = queue.Queue()

    def ask() -> None:
        try:
            spinner.ask(30.0, timeout=20)
        except BaseException as exc:
            result.put(exc)

    import threading

    thread = threading.Thread(target=ask)
    thread.start()
    time.sleep(0.2)
    spinner.kill()
    thread.join(10)
    error = result.get(timeout=1)
    assert isinstance(error, subactor.ActorFailed)
    assert error.kind == "killed"


def test_time_limit_interrupts_and_reports(rt: subactor.Runtime) -> None:
    spinner = rt.spawn(Spinner, time_limit=0.2)
    with pytest.raises(subactor.ActorFailed) as caught:
        spinner.ask(10.0, timeout=10)
    assert caught.value.kind == "time_limit"
    # Unsupervised, with the default policy (resume), it keeps serving.
    assert spinner.ask(0.0) == 0.0


def test_on_failure_restart_gives_a_fresh_instance(rt: subactor.Runtime) -> None:
    actor = rt.spawn(Stateful, on_failure="restart")
    assert actor.ask("x") == 1
    assert actor.ask("x") == 2
    with pytest.raises(subactor.RemoteError):
        actor.ask("fail")
    assert actor.ask("x") == 1  # a new instance, same reference
    assert actor.restarts == 1
    with pytest.raises(ValueError, match="on_failure"):
        rt.spawn(Stateful, on_failure="explode")


def test_monitor_callback_and_demonitor(rt: subactor.Runtime) -> None:
    watched = rt.spawn(Echo)
    other = rt.spawn(Echo)
    downs: queue.Queue[subactor.Down] = queue.Queue()
    handle = watched.monitor(downs.put)
    removed = other.monitor(downs.put)
    assert other.demonitor(removed) is True
    other.stop()
    watched.kill()
    down = downs.get(timeout=10)
    assert down.id == watched.id and down.kind == "killed"
    other.wait(10)
    time.sleep(0.1)
    assert downs.empty(), "a removed monitor must not fire"
    assert watched.demonitor(handle) is False  # it has fired
    with pytest.raises(TypeError):
        watched.monitor(42)  # type: ignore[arg-type]


def test_send_after_and_cancel(rt: subactor.Runtime) -> None:
    counter = rt.spawn(Counter)
    rt.send_after(0.05, counter, 5)
    cancelled = rt.send_after(30, counter, 1000)
    assert rt.cancel_timer(cancelled) is True
    time.sleep(0.3)
    assert counter.ask(0) == 5


def test_dead_letters_count_and_subscription(rt: subactor.Runtime) -> None:
    letters = rt.dead_letters.subscribe()
    before = rt.dead_letters.count
    actor = rt.spawn(Echo, name="gone")
    actor.stop()
    actor.wait(10)
    with pytest.raises(subactor.ActorStopped):
        actor.tell({"lost": 1})
    letter = letters.get(timeout=5)
    assert letter is not None
    assert (letter.recipient, letter.name, letter.reason) == (actor.id, "gone", "not_running")
    assert letter.message == {"lost": 1}
    assert rt.dead_letters.count == before + 1
    assert letters.get_nowait() is None
    assert letters.get(timeout=0.01) is None


def test_actors_talk_to_each_other_with_the_in_actor_api(rt: subactor.Runtime) -> None:
    spawner = rt.spawn("sa_actors:Spawner")
    child, reply = spawner.ask(5)
    assert reply == 15
    assert child.ask(1) == 16  # the child's reference works here too


def test_close_kills_everything_and_refuses_more(rt: subactor.Runtime) -> None:
    spinner = rt.spawn(Spinner)
    spinner.tell(60.0)
    assert rt.actor_count == 1
    started = time.monotonic()
    rt.close()
    assert time.monotonic() - started < 10
    assert rt.closed
    assert spinner.state == "stopped"
    with pytest.raises(subactor.SpawnError, match="shut down"):
        rt.spawn(Echo)
    with pytest.raises(subactor.ActorStopped):
        rt.lookup("x")
    rt.close()  # again: nothing


def test_runtimes_coexist() -> None:
    with subactor.Runtime() as one, subactor.Runtime() as two:
        a = one.spawn(Counter, 1)
        b = two.spawn(Counter, 2)
        # A reference of one runtime's actor works from anywhere, even in the other's.
        echo = two.spawn(Echo)
        assert echo.ask(a).ask(1) == 2
        assert b.ask(1) == 3


def test_a_monitor_callback_may_close_the_last_runtime() -> None:
    rt = subactor.Runtime()
    actor = rt.spawn(Echo)
    closed: queue.Queue[bool] = queue.Queue()

    def on_down(down: subactor.Down) -> None:
        rt.close()  # runs on the dispatcher thread, which then stops
        closed.put(rt.closed)

    actor.monitor(on_down)
    actor.stop()
    assert closed.get(timeout=10) is True
    # The dispatcher starts again for the next runtime.
    with subactor.Runtime() as again:
        echo = again.spawn(Echo)
        seen: queue.Queue[subactor.Down] = queue.Queue()
        echo.monitor(seen.put)
        echo.kill()
        assert seen.get(timeout=10).kind == "killed"


def test_an_actors_cyclic_garbage_is_collected_and_the_main_interpreters_collector_untouched(
    rt: subactor.Runtime,
) -> None:
    # The host freezes an actor's start-up objects (the modules `site` loaded, its
    # bootstrap) and collects as usual what the actor's module and instance make.
    frozen_here = gc.get_freeze_count()  # 3.12 starts with some (375), 3.13 with none
    probe = rt.spawn(GcProbe)
    enabled, frozen = probe.ask("state")
    assert enabled and frozen > 1000, (enabled, frozen)
    assert tuple(probe.ask("collect")) == (True, True), "garbage of the constructor and of a handler"
    assert gc.isenabled() and gc.get_freeze_count() == frozen_here


def test_a_warm_pool_serves_spawns_and_is_off_by_default(rt: subactor.Runtime) -> None:
    assert rt.warm_pool() == (0, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="warm_interpreters"):
        subactor.Runtime(warm_interpreters=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warm_interpreters"):
        subactor.Runtime(warm_interpreters=-1)
    with subactor.Runtime(warm_interpreters=2) as warm:
        deadline = time.monotonic() + 30
        while warm.warm_pool().ready < 2:
            assert time.monotonic() < deadline, warm.warm_pool()
            time.sleep(0.005)
        first, second = warm.spawn(Counter, 0), warm.spawn(Counter, 10)
        assert (first.ask(1), second.ask(1)) == (1, 11)
        pool = warm.warm_pool()
        assert (pool.size, pool.hits, pool.misses) == (2, 2, 0)
        assert "subactor-warm" in _thread_names()
    assert "subactor-warm" not in _thread_names(), "closing ends the pool's threads"


def _wait_ready(rt: subactor.Runtime, ready: int) -> None:
    deadline = time.monotonic() + 30
    while rt.warm_pool().ready < ready:
        assert time.monotonic() < deadline, rt.warm_pool()
        time.sleep(0.005)


def test_a_warm_pool_imports_the_modules_it_is_told_for_their_actors_only() -> None:
    with pytest.raises(ValueError, match="warm_imports"):
        subactor.Runtime(warm_imports="sa_actors")
    with pytest.raises(TypeError, match="warm_imports"):
        subactor.Runtime(warm_imports=[3])  # type: ignore[list-item]
    with subactor.Runtime(warm_interpreters=2, warm_imports=[Counter, "no_such_module_anywhere"]) as warm:
        _wait_ready(warm, 2)
        counter = warm.spawn(Counter, 5)
        assert counter.ask(1) == 6
        assert warm.warm_pool().imported == 1, warm.warm_pool()
        # The other slot's import failed in advance: a plain interpreter took its place,
        # for any class; a spawn of that module still fails as it would without a pool.
        with pytest.raises(subactor.SpawnError, match="No module named 'no_such_module_anywhere'"):
            warm.spawn("no_such_module_anywhere:Nothing")
        _wait_ready(warm, 2)
        tally = warm.spawn("sa_services:Tally")
        assert tally.ask(2) == 2
        pool = warm.warm_pool()
        assert (pool.hits, pool.misses, pool.imported) == (3, 0, 1), pool


def test_a_warm_pool_learns_what_is_spawned_unless_told_not_to() -> None:
    for imports, imported in (("recent", 1), (None, 0)):
        with subactor.Runtime(warm_interpreters=1, warm_imports=imports) as warm:
            for start in (0, 10):
                _wait_ready(warm, 1)
                assert warm.spawn(Counter, start).ask(1) == start + 1
            pool = warm.warm_pool()
            assert (pool.hits, pool.misses, pool.imported) == (2, 0, imported), (imports, pool)


def _thread_names() -> list[str]:
    return [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
