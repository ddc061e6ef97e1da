"""Pipelines: items flow through stages of worker actors."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import _check
from ._native import ActorRef, PipelineOutput

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Pipeline", "PipelineOutput", "Stage"]


class Stage:
    """A stage of a pipeline: a name, its worker actors, and how it routes items:
    ``"round_robin"`` (each worker in turn) or ``"least_loaded"`` (a worker holds at
    most two items, so uneven items balance by work done)."""

    def __init__(self, name: str, workers: Sequence[ActorRef], routing: str = "round_robin") -> None:
        if not isinstance(routing, str):
            raise TypeError(f"routing must be a str, not {type(routing).__name__}")
        if routing not in ("round_robin", "least_loaded"):
            raise ValueError(f"routing must be 'round_robin' or 'least_loaded', got {routing!r}")
        if isinstance(workers, (str, bytes)) or not isinstance(workers, Iterable):
            raise TypeError(f"workers must be a sequence of ActorRefs, not {type(workers).__name__}")
        self.name = _check.text(name, "name")
        self.workers = list(workers)
        for worker in self.workers:
            if not isinstance(worker, ActorRef):
                raise TypeError(f"workers must hold ActorRefs, not {type(worker).__name__}")
        self.routing = routing

    def __repr__(self) -> str:
        return f"Stage({self.name!r}, {len(self.workers)} workers, {self.routing!r})"


class Pipeline:
    """Items flow through stages of actors: each stage's worker answers (what its
    ``receive`` returns) are the next stage's items. Every queue is bounded: a slow
    stage slows ``send`` down (end-to-end backpressure).

    Feed with ``send`` and consume with ``recv`` (or iterate) from two threads, or let
    ``run(items)`` feed from a background thread while you consume. ``close()`` ends the
    input; once every item sent has come out, ``recv`` returns ``None`` and iteration
    stops. An item that fails in a stage comes out as a ``PipelineOutput`` with its
    ``error`` (a worker that raised: ``RemoteError``), not as an exception. With
    ``ordered``, outputs come out in the order items were sent.
    """

    def __init__(
        self,
        runtime: Runtime,
        stages: Sequence[Stage | tuple[str, Sequence[ActorRef]] | tuple[str, Sequence[ActorRef], str]],
        *,
        ordered: bool = False,
        capacity: int | None = None,
    ) -> None:
        specs = []
        for stage in stages:
            if not isinstance(stage, Stage):
                if not isinstance(stage, tuple):
                    raise TypeError(
                        f"a stage must be a Stage or a (name, workers[, routing]) tuple, not {type(stage).__name__}"
                    )
                stage = Stage(*stage)
            specs.append((stage.name, stage.workers, stage.routing))
        self._core = runtime._core.pipeline(
            specs, _check.flag(ordered, "ordered"), _check.optional_count(capacity, "capacity")
        )

    def send(self, item: Any, timeout: float | None = None) -> int:
        """Feeds an item, waiting while the first stage's queue is full (Ctrl-C
        interrupts; ``TimeoutError`` after ``timeout``); returns its sequence number.
        Raises ``ActorStopped`` once the input is closed."""
        return self._core.send(item, timeout)

    def close(self) -> None:
        """Takes no more items."""
        self._core.close()

    def recv(self, timeout: float | None = None) -> PipelineOutput | None:
        """The next output; ``None`` once the input is closed and every item has come out.
        ``TimeoutError`` after ``timeout``. One consumer thread at a time."""
        return self._core.recv(timeout)

    def __iter__(self) -> Iterator[PipelineOutput]:
        while (output := self._core.recv(None)) is not None:
            yield output

    def run(self, items: Iterable[Any]) -> Iterator[PipelineOutput]:
        """Feeds ``items`` from a background thread, closes the input after the last, and
        yields the outputs as they come (in order if the pipeline is ordered)."""
        failure: list[BaseException] = []
        finished = False

        def feed() -> None:
            try:
                for item in items:
                    self._core.send(item, None)
            except BaseException as exc:  # reported to the consumer below
                failure.append(exc)
            finally:
                self._core.close()

        feeder = threading.Thread(target=feed, name="subactor-pipeline-feed", daemon=True)
        feeder.start()
        try:
            yield from self
            finished = True
        finally:
            if not finished:
                # The consumer stopped early: nothing will take the outputs.
                self._core.abort()
            feeder.join()
        if failure:
            raise failure[0]

    @property
    def sent(self) -> int:
        """How many items have been sent."""
        return self._core.sent

    def abort(self) -> None:
        """Closes the input and drops the outputs still to come: what is in flight
        finishes, and nothing waits for a consumer any more."""
        self._core.abort()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
