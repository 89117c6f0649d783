"""Shared fixtures and Hypothesis profiles for the Labyrinth Python tests.

Profiles (LABYRINTH_HYPOTHESIS_PROFILE, default "ci"):
  ci      Hypothesis's own "ci" profile (derandomized, no database, no
          deadline) bounded so the whole suite takes about a minute;
  stress  many more, longer examples, randomized: for a long hunt,
          e.g. LABYRINTH_HYPOTHESIS_PROFILE=stress pytest tests/python -k machine
  dev     randomized, a few examples: quick local runs.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import labyrinth

settings.register_profile(
    "ci",
    settings.get_profile("ci"),
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "stress",
    max_examples=3000,
    stateful_step_count=150,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=20, stateful_step_count=30, deadline=None)
PROFILE = os.environ.get("LABYRINTH_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

#: Examples for the pool state machine (test_machine.py): each is cheap
#: (about 10 ms), so it gets more than the profile's default.
MACHINE_EXAMPLES = int(
    os.environ.get("LABYRINTH_MACHINE_EXAMPLES", {"ci": 800, "stress": 20000, "dev": 100}.get(PROFILE, 800))
)


@pytest.fixture
def pool() -> Iterator[labyrinth.Pool]:
    """A small pool (256 pages, reserve 4), closed afterwards."""
    with labyrinth.Pool(256 * labyrinth.PAGE_SIZE, atomic_reserve_pages=4) as p:
        yield p


class Worker:
    """A Python thread with its own owner id that runs callables on request
    (synchronously: call() returns the result or raises what it raised)."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[Callable[[], Any], queue.Queue[tuple[bool, Any]]] | None] = queue.Queue()
        ready: queue.Queue[int] = queue.Queue()
        self._t = threading.Thread(target=self._main, args=(ready,), daemon=True)
        self._t.start()
        self.owner = ready.get(timeout=10)

    def _main(self, ready: queue.Queue[int]) -> None:
        ready.put(labyrinth.owner_self())
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, reply = item
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # handed back to the caller
                reply.put((False, exc))

    def call(self, fn: Callable[[], Any], timeout: float = 30) -> Any:
        reply: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._q.put((fn, reply))
        ok, value = reply.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self._q.put(None)
        self._t.join(timeout=10)


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.stop()
