"""Bad input to every public argument (issue 15, item 6): a wrong type is a
``TypeError``, a value out of range a ``ValueError``, each naming the argument; never an
``OverflowError`` from the native layer, never accepted silently (``mailbox=True``), and
nothing is lost (the runtime goes on working)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import subactor
from sa_actors import Counter, Echo, square

# Untyped on purpose: these calls break the signatures.
Call = Callable[[Any, Any], Any]
sa: Any = subactor

HUGE = 2**70
CASES: list[tuple[str, Call, type[Exception], str]] = [
    # Runtime(...)
    ("mailbox_capacity=-1", lambda rt, a: sa.Runtime(mailbox_capacity=-1), ValueError, "mailbox_capacity must be at"),
    ("mailbox_capacity=0", lambda rt, a: sa.Runtime(mailbox_capacity=0), ValueError, "mailbox_capacity"),
    ("mailbox_capacity=True", lambda rt, a: sa.Runtime(mailbox_capacity=True), TypeError, "mailbox_capacity must be"),
    ("mailbox_capacity=1.5", lambda rt, a: sa.Runtime(mailbox_capacity=1.5), TypeError, "mailbox_capacity"),
    ("arena_max_bytes=-1", lambda rt, a: sa.Runtime(arena_max_bytes=-1), ValueError, "arena_max_bytes"),
    ("arena_max_bytes=0", lambda rt, a: sa.Runtime(arena_max_bytes=0), ValueError, "arena_max_bytes"),
    ("spin=-1", lambda rt, a: sa.Runtime(spin=-1), ValueError, "spin must be"),
    ("spin=nan", lambda rt, a: sa.Runtime(spin=float("nan")), ValueError, "spin"),
    ("spin='x'", lambda rt, a: sa.Runtime(spin="x"), TypeError, "spin"),
    ("python_path='dir'", lambda rt, a: sa.Runtime(python_path="dir"), TypeError, "python_path"),
    ("python_path=[1]", lambda rt, a: sa.Runtime(python_path=[1]), TypeError, "python_path"),
    # rt.spawn(...)
    ("mailbox=-1", lambda rt, a: rt.spawn(Counter, mailbox=-1), ValueError, "mailbox must be at least 1, got -1"),
    ("mailbox=huge", lambda rt, a: rt.spawn(Counter, mailbox=HUGE), ValueError, "mailbox must be at most"),
    ("mailbox=True", lambda rt, a: rt.spawn(Counter, mailbox=True), TypeError, "mailbox must be an int, not bool"),
    ("mailbox=1.0", lambda rt, a: rt.spawn(Counter, mailbox=1.0), TypeError, "mailbox"),
    ("core=-1", lambda rt, a: rt.spawn(Counter, core=-1), ValueError, "core must be at least 0"),
    ("core=huge", lambda rt, a: rt.spawn(Counter, core=HUGE), ValueError, "core"),
    ("time_limit=-1", lambda rt, a: rt.spawn(Counter, time_limit=-1), ValueError, "time_limit"),
    ("time_limit=inf", lambda rt, a: rt.spawn(Counter, time_limit=float("inf")), ValueError, "time_limit"),
    ("time_limit=1e19", lambda rt, a: rt.spawn(Counter, time_limit=1e19), ValueError, "time_limit must be at most"),
    ("time_limit=True", lambda rt, a: rt.spawn(Counter, time_limit=True), TypeError, "time_limit"),
    ("on_failure='x'", lambda rt, a: rt.spawn(Counter, on_failure="x"), ValueError, "on_failure must be one of"),
    ("on_failure=1", lambda rt, a: rt.spawn(Counter, on_failure=1), TypeError, "on_failure"),
    ("name=1", lambda rt, a: rt.spawn(Counter, name=1), TypeError, "name must be a str"),
    ("name=''", lambda rt, a: rt.spawn(Counter, name=""), ValueError, "name must not be empty"),
    ("placement='x'", lambda rt, a: rt.spawn(Counter, placement="x"), ValueError, "placement must be"),
    ("placement=1", lambda rt, a: rt.spawn(Counter, placement=1), TypeError, "placement"),
    ("memory_limit=-1", lambda rt, a: rt.spawn(Counter, memory_limit=-1), ValueError, "memory_limit must be at"),
    ("memory_limit=True", lambda rt, a: rt.spawn(Counter, memory_limit=True), TypeError, "memory_limit"),
    ("ChildSpec(placement='x')", lambda rt, a: sa.ChildSpec(Counter, placement="x"), ValueError, "placement"),
    # other Runtime methods
    ("lookup(1)", lambda rt, a: rt.lookup(1), TypeError, "name"),
    ("send_after(-1)", lambda rt, a: rt.send_after(-1, a, 1), ValueError, "delay"),
    ("send_after(True)", lambda rt, a: rt.send_after(True, a, 1), TypeError, "delay"),
    ("send_after(1e19)", lambda rt, a: rt.send_after(1e19, a, 1), ValueError, "delay"),
    ("send_after(actor='x')", lambda rt, a: rt.send_after(1, "x", 1), TypeError, "actor"),
    ("cancel_timer(-1)", lambda rt, a: rt.cancel_timer(-1), ValueError, "timer"),
    ("cancel_timer('x')", lambda rt, a: rt.cancel_timer("x"), TypeError, "timer"),
    ("executor(-1)", lambda rt, a: rt.executor(-1), ValueError, "max_workers must be greater than 0"),
    ("executor(True)", lambda rt, a: rt.executor(True), TypeError, "max_workers"),
    ("executor(workers=-1)", lambda rt, a: rt.executor(workers=-1), ValueError, "workers must be at least 1"),
    ("executor(pin=1)", lambda rt, a: rt.executor(1, pin=1), TypeError, "pin"),
    ("alloc(-1)", lambda rt, a: rt.alloc(-1), ValueError, "size must be at least 0"),
    ("alloc(huge)", lambda rt, a: rt.alloc(HUGE), ValueError, "size"),
    ("alloc(1.5)", lambda rt, a: rt.alloc(1.5), TypeError, "size"),
    ("pipeline(capacity=-1)", lambda rt, a: rt.pipeline(("s", [a]), capacity=-1), ValueError, "capacity"),
    ("pipeline(ordered=1)", lambda rt, a: rt.pipeline(("s", [a]), ordered=1), TypeError, "ordered"),
    ("pipeline stage 1", lambda rt, a: rt.pipeline(1), TypeError, "stage"),
    ("Stage(workers=[1])", lambda rt, a: sa.Stage("s", [1]), TypeError, "workers"),
    ("Stage(name=1)", lambda rt, a: sa.Stage(1, [a]), TypeError, "name"),
    ("Stage(routing=1)", lambda rt, a: sa.Stage("s", [a], 1), TypeError, "routing"),
    # ActorRef
    ("ask(timeout=-1)", lambda rt, a: a.ask(1, timeout=-1), ValueError, "timeout"),
    ("ask(timeout=True)", lambda rt, a: a.ask(1, timeout=True), TypeError, "timeout"),
    ("ask(timeout='x')", lambda rt, a: a.ask(1, timeout="x"), TypeError, "timeout"),
    ("ask(timeout=1e19)", lambda rt, a: a.ask(1, timeout=1e19), ValueError, "timeout must be at most"),
    ("ask_async(timeout=-1)", lambda rt, a: asyncio.run(a.ask_async(1, timeout=-1)), ValueError, "timeout"),
    ("tell_async(timeout=True)", lambda rt, a: asyncio.run(a.tell_async(1, timeout=True)), TypeError, "timeout"),
    ("wait(timeout=-1)", lambda rt, a: a.wait(timeout=-1), ValueError, "timeout"),
    ("wait_async(timeout=-1)", lambda rt, a: asyncio.run(a.wait_async(timeout=-1)), ValueError, "timeout"),
    ("demonitor(-1)", lambda rt, a: a.demonitor(-1), ValueError, "handle"),
    ("dead letters get(-1)", lambda rt, a: rt.dead_letters.subscribe().get(timeout=-1), ValueError, "timeout"),
    # Executor
    ("map(chunksize=0)", lambda rt, a: rt.executor(1).map(square, [1], chunksize=0), ValueError, "chunksize"),
    ("map(buffersize=-1)", lambda rt, a: rt.executor(1).map(square, [1], buffersize=-1), ValueError, "buffersize"),
    # Supervisors
    ("max_restarts=-1", lambda rt, a: sa.SupervisorSpec([Counter], max_restarts=-1), ValueError, "max_restarts"),
    ("max_restarts=1.5", lambda rt, a: sa.SupervisorSpec([Counter], max_restarts=1.5), TypeError, "max_restarts"),
    ("max_restarts=2**32", lambda rt, a: sa.SupervisorSpec([Counter], max_restarts=2**32), ValueError, "max_restarts"),
    ("within=-1", lambda rt, a: sa.SupervisorSpec([Counter], within=-1), ValueError, "within"),
    ("backoff=(2, 1)", lambda rt, a: sa.SupervisorSpec([Counter], backoff=(2, 1)), ValueError, "backoff"),
    ("backoff=1", lambda rt, a: sa.SupervisorSpec([Counter], backoff=1), TypeError, "backoff"),
    ("strategy='x'", lambda rt, a: sa.SupervisorSpec([Counter], strategy="x"), ValueError, "strategy must be one of"),
    ("children='x'", lambda rt, a: sa.SupervisorSpec("sa_actors:Counter"), TypeError, "children"),
    ("ChildSpec(mailbox=-1)", lambda rt, a: sa.ChildSpec(Counter, mailbox=-1), ValueError, "mailbox"),
    ("ChildSpec(core=-1)", lambda rt, a: sa.ChildSpec(Counter, core=-1), ValueError, "core"),
    ("ChildSpec(shutdown=-1)", lambda rt, a: sa.ChildSpec(Counter, shutdown=-1), ValueError, "shutdown"),
    ("ChildSpec(restart='x')", lambda rt, a: sa.ChildSpec(Counter, restart="x"), ValueError, "restart"),
    ("ChildSpec(actor=1)", lambda rt, a: sa.ChildSpec(1), TypeError, "actor"),
    ("Supervisor.child(-1)", lambda rt, a: rt.spawn(sa.SupervisorSpec([Counter])).child(-1), ValueError, "index"),
    ("Supervisor.wait(-1)", lambda rt, a: rt.spawn(sa.SupervisorSpec([Counter])).wait(-1), ValueError, "timeout"),
]


@pytest.mark.parametrize(("call", "error", "text"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_argument_is_refused_by_name(
    rt: subactor.Runtime, call: Call, error: type[Exception], text: str
) -> None:
    echo = rt.spawn(Echo)
    with pytest.raises(error, match=text) as raised:
        call(rt, echo)
    assert type(raised.value) is error  # not a subclass such as OverflowError's relatives
    # Nothing was lost: the runtime and the actor go on.
    assert echo.ask("still here", timeout=30) == "still here"


def test_good_arguments_still_work(rt: subactor.Runtime) -> None:
    counter = rt.spawn(Counter, 1, name="counted", mailbox=4, time_limit=5, on_failure=subactor.OnFailure.RESTART)
    assert counter.ask(1, timeout=10) == 2
    assert counter.ask(1, timeout=10.0) == 3
    assert rt.lookup("counted") == counter
    timer = rt.send_after(30, counter, 1)
    assert rt.cancel_timer(timer) is True
    assert len(rt.alloc(0)) == 0
    with rt.executor(workers=1, pin=False) as ex:
        assert list(ex.map(square, [1, 2, 3], chunksize=2, buffersize=4)) == [1, 4, 9]
    spec = subactor.SupervisorSpec(
        [subactor.ChildSpec(Counter, restart="transient", shutdown=1)], max_restarts=0, within=1, backoff=(0, 0)
    )
    supervisor = rt.spawn(spec)
    assert supervisor.child(5) is None


def test_bad_arguments_inside_an_actor(rt: subactor.Runtime) -> None:
    """The in-actor module (``import subactor`` in an actor) checks its arguments the
    same way: named, never an ``OverflowError``, never a panic."""
    answers = rt.spawn("sa_actors:ArgumentProbe").ask(None, timeout=60)
    expected = {
        "alloc(-1)": "ValueError",
        "alloc(True)": "TypeError",
        "alloc(1.5)": "TypeError",
        "ask(timeout=-1)": "ValueError",
        "ask(timeout=True)": "TypeError",
        "ask(timeout=1e19)": "ValueError",
        "send_after(-1)": "ValueError",
        "send_after(True)": "TypeError",
        "send_after(1e19)": "ValueError",
        "cancel_timer(-1)": "ValueError",
        "cancel_timer('x')": "TypeError",
        "demonitor(-1)": "ValueError",
        "spawn(name='')": "ValueError",
        "spawn(name=1)": "TypeError",
    }
    assert {label: kind for label, (kind, _) in answers.items()} == expected
    for label, (_, message) in answers.items():
        assert "Overflow" not in message and "panic" not in message, (label, message)
