"""OpenTelemetry export from Python (``Runtime(otel=...)``, ``subactor.Span``) to a real
OTLP/HTTP receiver: a small HTTP server here that takes the exporter's protobuf posts and
decodes them. The program that exports runs in a child process (the export and its
``tracing`` subscriber are once per process: this one keeps none)."""

from __future__ import annotations

import gzip
import http.server
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import subactor
from conftest import run_script

# ---- the wire format: just enough protobuf to read ExportTraceServiceRequest ----------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` of a protobuf message; length-delimited
    values as bytes, fixed ones as ints."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = int.from_bytes(data[i : i + 8], "little"), i + 8
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        elif wire == 5:
            value, i = int.from_bytes(data[i : i + 4], "little"), i + 4
        else:
            raise ValueError(f"wire type {wire} of field {number}")
        yield number, wire, value


def _sub(data: bytes, number: int) -> list[bytes]:
    return [v for n, w, v in _fields(data) if n == number and isinstance(v, bytes)]


def _attributes(data: bytes, number: int) -> dict[str, object]:
    """KeyValue attributes (field ``number``): string, bool and int values."""
    found: dict[str, object] = {}
    for kv in _sub(data, number):
        key = _sub(kv, 1)[0].decode()
        for any_value in _sub(kv, 2):
            for n, _, v in _fields(any_value):
                if n == 1 and isinstance(v, bytes):
                    found[key] = v.decode()
                elif n in (2, 3) and isinstance(v, int):
                    found[key] = bool(v) if n == 2 else v
    return found


@dataclass
class Span:
    service: object
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    attributes: dict[str, object]
    status_code: int


def decode(body: bytes) -> list[Span]:
    """The spans of an ExportTraceServiceRequest (opentelemetry-proto's trace.proto)."""
    spans = []
    for resource_spans in _sub(body, 1):
        service = next((_attributes(r, 1).get("service.name") for r in _sub(resource_spans, 1)), None)
        for scope_spans in _sub(resource_spans, 2):
            for s in _sub(scope_spans, 2):
                status = next((v for st in _sub(s, 15) for n, _, v in _fields(st) if n == 3), 0)
                spans.append(
                    Span(
                        service=service,
                        trace_id=next(iter(_sub(s, 1)), b"").hex(),
                        span_id=next(iter(_sub(s, 2)), b"").hex(),
                        parent_id=next(iter(_sub(s, 4)), b"").hex(),
                        name=next(iter(_sub(s, 5)), b"").decode(),
                        attributes=_attributes(s, 9),
                        status_code=int(status),
                    )
                )
    return spans


# ---- the receiver ---------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    spans: list[Span] = field(default_factory=list)
    posts: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            kind = self.headers.get("Content-Type", "")
            with got.lock:
                got.posts.append((self.path, kind))
                if self.path == "/v1/traces" and kind == "application/x-protobuf":
                    got.spans.extend(decode(body))
            # An empty ExportTraceServiceResponse: success.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def test_decoder_reads_a_known_message() -> None:
    # trace_id 01.., span_id 02.., name "n", one int attribute k=5, status code 2.
    kv = b"\x0a\x01k" + b"\x12\x02\x18\x05"
    span = (
        b"\x0a\x10" + bytes([1] * 16) + b"\x12\x08" + bytes([2] * 8) + b"\x2a\x01n"
        + b"\x4a" + bytes([len(kv)]) + kv + b"\x7a\x02\x18\x02"
    )
    scope = b"\x12" + bytes([len(span)]) + span
    resource_spans = b"\x12" + bytes([len(scope)]) + scope
    body = b"\x0a" + bytes([len(resource_spans)]) + resource_spans
    [s] = decode(body)
    assert (s.trace_id, s.span_id, s.parent_id, s.name) == ("01" * 16, "02" * 8, "", "n")
    assert (s.attributes, s.status_code) == ({"k": 5}, 2)


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_spans_reach_an_otlp_receiver_with_the_parent_trace(receiver: Receiver) -> None:
    env_name = os.environ.pop("OTEL_SERVICE_NAME", None)
    try:
        done = run_script("otel_export.py", receiver.url, f"00-{TRACE}-{PARENT}-01", timeout=120)
    finally:
        if env_name is not None:
            os.environ["OTEL_SERVICE_NAME"] = env_name
    assert done.returncode == 0, done.stderr
    # Runtime.close sent every span before the program ended.
    with receiver.lock:
        spans, posts = list(receiver.spans), list(receiver.posts)
    assert posts and all(p == ("/v1/traces", "application/x-protobuf") for p in posts), posts
    assert {s.service for s in spans} == {"subactor"}
    [request] = [s for s in spans if s.name == "request"]
    assert (request.trace_id, request.parent_id) == (TRACE, PARENT)
    assert done.stdout.strip() == f"00-{TRACE}-{request.span_id}-01", "Span.traceparent is the span's"

    def received(name: str) -> list[Span]:
        return [s for s in spans if s.name == "subactor.receive" and s.attributes.get("actor.name") == name]

    here, proc, relay = received("echo-here"), received("echo-proc"), received("relay")
    # echo-here: one ask outside the span (a trace of its own), one inside.
    assert len(here) == 2
    [outside] = [s for s in here if s.trace_id != TRACE]
    assert outside.parent_id == ""
    [inside] = [s for s in here if s.trace_id == TRACE]
    assert inside.parent_id == request.span_id
    assert inside.attributes["message"] == "ask"
    # echo-proc, a process actor: an ask and a tell from the span, an ask from the relay.
    assert len(proc) == 3 and all(s.trace_id == TRACE for s in proc)
    assert sorted(str(s.attributes["message"]) for s in proc) == ["ask", "ask", "tell"]
    [from_relay] = [s for s in proc if s.parent_id != request.span_id]
    [relayed] = relay
    assert (relayed.trace_id, relayed.parent_id) == (TRACE, request.span_id)
    assert from_relay.parent_id == relayed.span_id, "the relay's ask is its handler's child"
    assert {s.attributes["actor.id"] for s in proc} == {proc[0].attributes["actor.id"]}
    # A span that an exception left is marked failed (status code 2: error).
    [failing] = [s for s in spans if s.name == "failing"]
    assert failing.status_code == 2 and failing.trace_id != TRACE and failing.parent_id == ""


def test_spans_without_an_export_record_nothing_and_bad_input_is_refused() -> None:
    # This process runs no export: a span is a no-op, with no context.
    with subactor.Span("nothing") as span:
        assert span.traceparent is None
    with pytest.raises(RuntimeError):
        span.__enter__()
    for bad in ["", "00-abc-def-01", f"01-{TRACE}-{PARENT}-01", f"00-{'0' * 32}-{PARENT}-01"]:
        with pytest.raises(ValueError, match="traceparent"):
            subactor.Span("x", traceparent=bad)
    for url in ["127.0.0.1:4318", "https://collector:4318", "http://"]:
        with pytest.raises(ValueError, match="otel"):
            subactor.Runtime(otel=url)
    with pytest.raises(TypeError, match="otel"):
        subactor.Runtime(otel=4318)  # type: ignore[arg-type]
