"""Statuses and exceptions of the Labyrinth Python SDK.

Every failed call raises the subclass of :class:`LabyrinthError` that matches
the C status (``labyrinth_status`` in ``labyrinth.h``); the exception carries
the status (:attr:`LabyrinthError.status`) and the C library's message
(:attr:`LabyrinthError.message`, which says what went wrong and, where it can,
what to do). A failed call changes nothing.
"""

from __future__ import annotations

import enum

__all__ = [
    "Status",
    "LabyrinthError",
    "OutOfPages",
    "MemlockLimitError",
    "InvalidArgument",
    "NotOwner",
    "DoubleFree",
    "ForeignPage",
    "Busy",
    "Timeout",
    "Unsupported",
    "SystemFailure",
    "error_class",
]


class Status(enum.IntEnum):
    """The C ``labyrinth_status`` values (stable within ABI 1)."""

    OK = 0
    NOMEM = 1
    INVALID = 2
    NOT_OWNER = 3
    DOUBLE_FREE = 4
    FOREIGN = 5
    BUSY = 6
    TIMEOUT = 7
    UNSUPPORTED = 8
    SYSTEM = 9

    @property
    def c_name(self) -> str:
        """The C enumerator, e.g. ``LABYRINTH_ERR_NOMEM``."""
        return "LABYRINTH_OK" if self is Status.OK else f"LABYRINTH_ERR_{self.name}"


class LabyrinthError(Exception):
    """A Labyrinth call failed. ``status`` says how, ``message`` why."""

    #: The status this class stands for (the base class: none in particular).
    STATUS: Status | None = None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is None:
            status = self.STATUS if self.STATUS is not None else Status.SYSTEM
        try:
            self.status: Status = Status(status)
        except ValueError:  # a status a newer core knows and we do not
            self.status = Status.SYSTEM
        self.message: str = message

    def __str__(self) -> str:
        return f"{self.status.c_name}: {self.message}"

    def __reduce__(self) -> tuple[type[LabyrinthError], tuple[str, int]]:
        return (type(self), (self.message, int(self.status)))


class OutOfPages(LabyrinthError):
    """No block of the asked order is available (and the call may not wait)."""

    STATUS = Status.NOMEM


class MemlockLimitError(LabyrinthError):
    """The memlock limit (RLIMIT_MEMLOCK without CAP_IPC_LOCK) refused to pin
    memory for ``Pool(..., pin=True)`` (strict pinning). The message gives the
    limit, the size asked and the fix in Python's terms (``pin="auto"`` or
    ``pin=False``, a higher ``ulimit -l``). A ring whose registration of the
    arena the limit refuses does not raise it: the ring runs its fixed I/O
    unregistered and says so (``RingStats.register_fallback``). Not an
    :class:`OutOfPages`: nothing was created. Its status is ``NOMEM``."""

    STATUS = Status.NOMEM


class InvalidArgument(LabyrinthError, ValueError):
    """A bad argument: bad order or flags, a closed pool, a freed page, a
    pointer that is not the start of an allocated block."""

    STATUS = Status.INVALID


class NotOwner(LabyrinthError):
    """The block is exclusive to another owner (thread)."""

    STATUS = Status.NOT_OWNER


class DoubleFree(LabyrinthError):
    """The block is already free."""

    STATUS = Status.DOUBLE_FREE


class ForeignPage(LabyrinthError):
    """The address is not inside this pool's arena."""

    STATUS = Status.FOREIGN


class Busy(LabyrinthError):
    """In use: buffer exports alive, page in flight in the kernel, pool with
    live pages or running calls, ring with operations in flight."""

    STATUS = Status.BUSY


class Timeout(LabyrinthError, TimeoutError):
    """A waiting allocation timed out."""

    STATUS = Status.TIMEOUT


class Unsupported(LabyrinthError):
    """The kernel, CPU or build lacks a feature the call needs."""

    STATUS = Status.UNSUPPORTED


class SystemFailure(LabyrinthError):
    """A system call failed; the message carries errno."""

    STATUS = Status.SYSTEM


_BY_STATUS: dict[Status, type[LabyrinthError]] = {
    Status.NOMEM: OutOfPages,
    Status.INVALID: InvalidArgument,
    Status.NOT_OWNER: NotOwner,
    Status.DOUBLE_FREE: DoubleFree,
    Status.FOREIGN: ForeignPage,
    Status.BUSY: Busy,
    Status.TIMEOUT: Timeout,
    Status.UNSUPPORTED: Unsupported,
    Status.SYSTEM: SystemFailure,
}


def error_class(status: int) -> type[LabyrinthError]:
    """The exception class raised for a status (LabyrinthError if unknown)."""
    try:
        return _BY_STATUS[Status(status)]
    except (ValueError, KeyError):
        return LabyrinthError
