"""Exports traces to the OTLP/HTTP collector at argv[1] (the test's receiver): a
``subactor.Span`` child of the traceparent argv[2], inside which the main interpreter
asks an interpreter actor, a process actor, and a relay (an interpreter actor) that asks
the process actor; then a span that fails. Prints the span's own traceparent."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import subactor
from sa_actors import Echo, Relay

if __name__ == "__main__":
    endpoint, parent = sys.argv[1], sys.argv[2]
    with subactor.Runtime(otel=endpoint) as rt:
        here = rt.spawn(Echo, name="echo-here")
        there = rt.spawn(Echo, name="echo-proc", placement="process")
        relay = rt.spawn(Relay, name="relay")
        assert here.ask(0) == 0  # outside any span: a trace of its own
        with subactor.Span("request", traceparent=parent) as span:
            assert here.ask(1) == 1
            assert there.ask(2) == 2
            there.tell(3)
            assert relay.ask((there, 4)) == 4
            print(span.traceparent, flush=True)
        try:
            with subactor.Span("failing"):
                raise KeyError("on purpose")
        except KeyError:
            pass
