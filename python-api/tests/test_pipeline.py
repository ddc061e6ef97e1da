"""Pipelines from Python."""

from __future__ import annotations

import threading
import time

import pytest

import subactor
from sa_actors import Doubler, Plus1, Sleeper


def test_ordered_pipeline_with_a_failing_item(rt: subactor.Runtime) -> None:
    doublers = [rt.spawn(Doubler) for _ in range(2)]
    plus = [rt.spawn(Plus1)]
    pipeline = rt.pipeline(("double", doublers), subactor.Stage("plus", plus, "least_loaded"), ordered=True)
    outputs = list(pipeline.run(range(30)))
    assert [o.seq for o in outputs] == list(range(30))
    for output in outputs:
        if output.seq == 13:
            assert not output.ok and output.stage == "double" and output.value is None
            assert isinstance(output.error, subactor.RemoteError)
            assert output.error.type_name == "ValueError"
        else:
            assert output.ok and output.value == output.seq * 2 + 1 and output.error is None
    assert pipeline.sent == 30


def test_send_and_recv_from_two_threads(rt: subactor.Runtime) -> None:
    pipeline = rt.pipeline(("plus", [rt.spawn(Plus1)]), capacity=2)

    def feed() -> None:
        for i in range(100):
            pipeline.send(i)
        pipeline.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    values = sorted(o.value for o in pipeline)
    feeder.join(10)
    assert values == list(range(1, 101))
    assert pipeline.recv() is None
    with pytest.raises(subactor.ActorStopped):
        pipeline.send(1)


def test_backpressure_and_timeouts(rt: subactor.Runtime) -> None:
    pipeline = rt.pipeline(("sleep", [rt.spawn(Sleeper, mailbox=1)]), capacity=1)
    with pytest.raises(TimeoutError):
        pipeline.recv(timeout=0.05)
    sent = 0
    with pytest.raises(TimeoutError):
        for _ in range(20):  # fills the queues and the mailbox while nothing is consumed
            pipeline.send(0.01, timeout=0.2)
            sent += 1
    assert 2 <= sent < 10
    first = pipeline.recv(timeout=10)
    assert first is not None and first.value == 0.01
    pipeline.abort()
    assert pipeline.recv() is None


def test_closing_the_runtime_aborts_an_unconsumed_pipeline(rt: subactor.Runtime) -> None:
    pipeline = rt.pipeline(("sleep", [rt.spawn(Sleeper)]), capacity=1)
    for _ in range(5):
        pipeline.send(0.01, timeout=5)
    time.sleep(0.2)  # the worker waits for room in the full output now
    started = time.monotonic()
    rt.close()
    assert time.monotonic() - started < 10


def test_abandoning_a_run_does_not_hang(rt: subactor.Runtime) -> None:
    pipeline = rt.pipeline(("plus", [rt.spawn(Plus1)]), capacity=1)
    for output in pipeline.run(range(1000)):
        assert output.value == 1
        break
    rt.close()  # the worker is not stuck on a full output


def test_invalid_pipelines(rt: subactor.Runtime) -> None:
    with pytest.raises(ValueError, match="no workers"):
        rt.pipeline(("empty", []))
    with pytest.raises(ValueError, match="routing"):
        rt.pipeline(("x", [rt.spawn(Plus1)], "random"))
