"""The Python API across nodes: a real nats-server (started here, on a port it picks itself) and a
node process (`python -m subactor node`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import subactor
from sa_actors import Counter, Echo
from sa_services import Sleepy, Tally

TESTS = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _client_port(ports_file: str) -> int | None:
    """The client port a ports file names (``{"nats":["nats://127.0.0.1:4222"],...}``),
    once it is written whole."""
    try:
        with open(ports_file) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.rstrip().endswith("}"):
        return None
    port: int = int(json.loads(text)["nats"][0].rsplit(":", 1)[1])
    return port


@pytest.fixture
def nats() -> Iterator[str]:
    """A nats-server on a loopback port it picks itself (``-p -1``, written to a ports
    file): a port picked here in advance could be taken by another process first."""
    server = shutil.which("nats-server")
    if server is None:
        pytest.fail("nats-server must be installed (scripts/test installs Debian's nats-server)")
    assert server is not None
    store = tempfile.mkdtemp(prefix="subactor-nats-")
    files = tempfile.mkdtemp(prefix="subactor-nats-files-")
    with open(os.path.join(files, "log"), "w") as log:
        proc = subprocess.Popen(
            [server, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", files, "-js", "-sd", store],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        ports_file = os.path.join(files, f"nats-server_{proc.pid}.ports")
        while (port := _client_port(ports_file)) is None:
            if proc.poll() is not None:
                with open(os.path.join(files, "log")) as f:
                    pytest.fail(f"nats-server ended ({proc.returncode}) before it listened; its log:\n{f.read()}")
            assert time.monotonic() < deadline, "nats-server wrote no ports file"
            time.sleep(0.01)
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(files, ignore_errors=True)


@pytest.fixture
def node_b(nats: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "subactor", "node", "--nats", nats, "--name", "b", "--python-path", TESTS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=TESTS,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "node b ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_actors_on_another_node_from_python(nats: str, node_b: subprocess.Popen[str]) -> None:
    with subactor.Runtime(cluster=nats, node="a") as rt:
        deadline = time.monotonic() + 30
        while True:
            try:
                counter = rt.spawn(Counter, 10, node="b", name="remote-counter")
                break
            except subactor.SpawnError:
                # b's heartbeat has not reached a yet.
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert counter.ask(1) == 11
        for _ in range(50):
            counter.tell(1)
        assert counter.ask(0) == 61, "one sender's tells arrive in order"
        found = rt.lookup("remote-counter")
        assert found == counter
        # A local actor's reference crosses to b, and b's actor answers through it.
        echo = rt.spawn(Echo)
        assert rt.spawn(Echo, node="b").ask(echo) == echo
        with pytest.raises(subactor.RemoteError):
            counter.ask("not a number")


def test_bad_cluster_options_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="node"):
        subactor.Runtime(cluster="nats://127.0.0.1:1")
    with pytest.raises(ValueError, match="cluster="):
        subactor.Runtime(node="a")
    with pytest.raises(ValueError, match="together"):
        subactor.Runtime(cluster="nats://127.0.0.1:1", node="a", user="u")
    with pytest.raises(RuntimeError, match="cannot connect to NATS"):
        subactor.Runtime(cluster=f"nats://127.0.0.1:{free_port()}", node="a")


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_a_state_kept_in_the_cluster_is_restored_by_another_runtime(nats: str, placement: str) -> None:
    with subactor.Runtime(cluster=nats, node="a") as rt:
        tally = rt.spawn(Tally, name="kept-tally", placement=placement, snapshots="message", state_store="cluster")
        tally.ask(40)
        tally.ask(2)
    # Another node, another runtime: the same actor restores it.
    with subactor.Runtime(cluster=nats, node="c") as rt:
        tally = rt.spawn(Tally, name="kept-tally", placement=placement, snapshots="message", state_store="cluster")
        assert tally.ask(0) == 42
        with pytest.raises(subactor.SpawnError, match="needs a name"):
            rt.spawn(Tally, snapshots="message", state_store="cluster")


def spawn_when_up(spawn: Callable[[], subactor.ActorRef]) -> subactor.ActorRef:
    """Spawns on another node once its heartbeat has reached this one."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return spawn()
        except subactor.SpawnError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_service_options_travel_with_a_spawn_on_another_node(nats: str, node_b: subprocess.Popen[str]) -> None:
    with subactor.Runtime(cluster=nats, node="a") as rt:
        sleepy = spawn_when_up(lambda: rt.spawn(Sleepy, node="b", placement="process", max_concurrency=10))

        async def many() -> list[Any]:
            return list(await asyncio.gather(*(sleepy.ask_async(0.2) for _ in range(20))))

        assert max(asyncio.run(many())) == 10, "max_concurrency applies on b"
        tally = rt.spawn(Tally, node="b", name="b-tally", snapshots="message", state_store="cluster")
        tally.ask(40)
        tally.ask(2)
        tally.stop()
        tally.wait()
        # The state was kept in the cluster by b's runtime: here, it comes back.
        again = rt.spawn(Tally, name="b-tally", snapshots="message", state_store="cluster")
        assert again.ask(0) == 42
