"""Fault points: the places where a run's state on disk changes, for fault injection.

A resumable run is only as good as what it leaves on disk when it dies, and its
state on disk changes only where it writes: a stage's JSON, parameters, a
checkpoint, a metrics line, a log line, ``results.json``. Each such place calls
:func:`point`, which does nothing unless one of two environment variables is set:

- ``CGJAX_FAULT_TRACE=FILE``: append one line per point passed,
  ``STAGE<TAB>K<TAB>EVENT`` (``K`` counts the points within ``STAGE`` in this
  process; ``STAGE`` is ``-`` outside any stage), so a test can list the kill
  points of an uninterrupted run;
- ``CGJAX_FAULT_KILL=STAGE:K``: the process sends itself ``SIGKILL`` at the
  ``K``-th point within stage ``STAGE`` (no cleanup, no ``finally``: what
  ``kill -9`` or a power cut does); ``CGJAX_FAULT_KILL=@EVENT``: at the first
  point whose event is ``EVENT`` (e.g. ``@results.json: temporary file written``).

``tests/faults/test_fault_injection.py`` uses both to kill every experiment
inside each of its stages and checks that reruns finish with the same
``results.json`` as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

__all__ = ["point", "in_stage"]

TRACE_ENV = "CGJAX_FAULT_TRACE"
KILL_ENV = "CGJAX_FAULT_KILL"

_stage = ["-"]  # the innermost running stage
_counts: dict[str, int] = {}


def _kill_spec() -> tuple[str, int] | str | None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    if spec.startswith("@"):
        return spec[1:]
    stage, _, k = spec.rpartition(":")
    try:
        return stage, int(k)
    except ValueError:
        raise ValueError(
            f"{KILL_ENV} must be STAGE:K (K an integer) or @EVENT, got {spec!r}"
        ) from None


def point(event: str) -> None:
    """Marks a fault point (``event``: what was just done, for the trace)."""
    trace, kill = os.environ.get(TRACE_ENV), _kill_spec()
    if not trace and kill is None:
        return
    stage = _stage[-1]
    k = _counts[stage] = _counts.get(stage, 0) + 1
    if trace:
        with open(trace, "a") as f:
            f.write(f"{stage}\t{k}\t{event}\n")
    if kill == (stage, k) or kill == event:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def in_stage(name: str) -> Iterator[None]:
    """Points inside the ``with`` block count as stage ``name``'s."""
    _stage.append(name)
    try:
        yield
    finally:
        _stage.pop()
