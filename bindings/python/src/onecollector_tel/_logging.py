"""Routes the library's log lines to the standard ``logging`` module.

Every line goes to the logger ``onecollector_tel`` at the matching level (error, warning,
info, debug, and level 5 for trace), so the host's handlers and pytest's ``caplog`` see them.
Lines come from whatever thread the library runs (its worker thread included); ctypes takes
the GIL for the call.

Interpreter exit is the dangerous moment: a foreign thread that tries to take the GIL while
Python finalizes can hang or be torn down mid-call. So the package's exit hook first shuts the
session down (the worker is joined and stops logging), then calls :func:`detach`, which
hands the library back its default sink before Python starts finalizing. The callback also
turns into a no-op from then on, in case the library had read it just before.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Iterator

from . import _native
from ._errors import python_names

LOGGER_NAME = "onecollector_tel"

#: The level of the library's trace lines (below ``logging.DEBUG``).
TRACE = 5

logger = logging.getLogger(LOGGER_NAME)
# The library convention: a program that configures no logging sees nothing of ours, rather
# than logging's last-resort handler printing our warnings (an offline command line's
# "cannot reach the collector ...") on its stderr. The host's own handlers still get every line.
logger.addHandler(logging.NullHandler())

_PY_LEVEL = {
    _native.TEL_LOG_ERROR: logging.ERROR,
    _native.TEL_LOG_WARN: logging.WARNING,
    _native.TEL_LOG_INFO: logging.INFO,
    _native.TEL_LOG_DEBUG: logging.DEBUG,
    _native.TEL_LOG_TRACE: TRACE,
}

_active = True
# Lines the library logs on a thread inside `quiet()` are dropped.
_quiet = threading.local()
#: The level the callback is installed with in the library; None before the first install.
_installed_level: int | None = None


def _on_log(level: int, message: bytes | None, _user_data: int | None) -> None:
    # Never let an exception travel back into the library; ctypes would only print it.
    try:
        if not _active or sys.is_finalizing() or getattr(_quiet, "on", False):
            return
        py_level = _PY_LEVEL.get(level, logging.DEBUG)
        if logger.isEnabledFor(py_level):
            text = message.decode("utf-8", "replace") if message else ""
            logger.log(py_level, "%s", python_names(text))
    except BaseException:  # noqa: BLE001 - the boundary must swallow everything
        pass


# The C function pointer must outlive every call the library could make to it: it is kept
# here, at module level, for the whole life of the process and never released.
_CALLBACK = _native.LOG_FN(_on_log)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Drops the library's lines logged on this thread meanwhile (those of the calls it makes
    here; not the worker's). For the package's own probes, whose lines would mislead."""
    previous = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = previous


def install() -> None:
    """Routes the library's lines to :data:`logger`.

    Debug lines are always requested (they are few: one per failed request), so that a level
    lowered later, by ``caplog.set_level`` say, takes effect at once; trace lines only when
    the logger is enabled for them now, as there may be many. The library is called only when
    that changes anything: a forked child inherits the installed callback, and leaves the
    library's logger lock alone (see :func:`detach`).
    """
    global _installed_level
    if not _active:
        return
    max_level = _native.TEL_LOG_TRACE if logger.isEnabledFor(TRACE) else _native.TEL_LOG_DEBUG
    if max_level != _installed_level:
        _native.lib.tel_set_logger(_CALLBACK, max_level, None)
        _installed_level = max_level


def detach(call_library: bool = True) -> None:
    """Makes the callback a no-op and, with ``call_library``, hands the library back its
    default sink (stderr when ``TEL_LOG`` names a level). Called at interpreter exit; not
    undone by :func:`install`.

    A forked child that never started a session of its own has no library thread that could
    call back, and passes False: the library's logger lock may have been held by one of the
    parent's threads at the fork, and taking it there could block for ever.
    """
    global _active
    _active = False
    if call_library:
        _native.lib.tel_set_logger(_native.LOG_FN(), _native.TEL_LOG_OFF, None)


#: The clock of :class:`QueueFullWarning` (tests replace it).
_clock = time.monotonic


class QueueFullWarning:
    """Says, through :data:`logger`, that events are dropped for a full queue: a WARNING the
    first time a session drops one, then at most once a minute, with how many went since the
    last one. ``log()`` never raises for a full queue, so without it the drops would show only
    in ``stats()["dropped_queue_full"]``."""

    INTERVAL = 60.0

    def __init__(self, what: str) -> None:
        self._what = what
        self._lock = threading.Lock()
        self._dropped = 0
        self._next_warning = 0.0
        self._warned = False

    def dropped(self) -> None:
        with self._lock:
            self._dropped += 1
            now = _clock()
            if self._warned and now < self._next_warning:
                return
            count, self._dropped = self._dropped, 0
            since = "in the last minute or so" if self._warned else "so far"
            self._warned = True
            self._next_warning = now + self.INTERVAL
        logger.warning(
            "%s: the queue is full: %d event%s dropped %s (stats()['dropped_queue_full'] counts them "
            "all); raise queue_max_events or log fewer events",
            self._what,
            count,
            "" if count == 1 else "s",
            since,
        )
