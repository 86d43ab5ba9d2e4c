"""The Python API over the C ABI: one telemetry session for the whole process.

The binding adds what Python users expect (keyword configuration, exceptions, a context
manager, ``logging``, clean interpreter exit and fork) and decides nothing about delivery:
validation, batching, retries, kill windows and the cache are the library's.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Literal, Mapping, Optional, TypedDict, Union

from . import _logging, _native
from ._errors import (
    InvalidConfigError,
    InvalidEventError,
    NotInitializedError,
    TelemetryError,
    TelemetryTimeoutError,
    error_for,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

_lib = _native.lib

#: Default deadline of :func:`flush`, in seconds.
DEFAULT_FLUSH_TIMEOUT = 10.0
#: Default deadline of :func:`shutdown` and of leaving :func:`session`, in seconds.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Deadline of the shutdown done at interpreter exit for a host that forgot it, in seconds.
ATEXIT_SHUTDOWN_TIMEOUT = 1.0

#: Documented Common Schema 4.0 extension fields, as ``{"app": {"ver": "1.2"}, ...}``.
Ext = Mapping[str, Mapping[str, str]]


class Options(TypedDict, total=False):
    """The configuration keys of ``tel_init`` (abi.md, "Configuration") besides ``ikey``,
    ``endpoint`` and ``ext``. A key left out takes the library's default."""

    enabled: bool
    #: The cache file; ``None`` disables persistence (the library's ``null``).
    cache_path: Union[str, "os.PathLike[str]", None]
    batch_max_events: int
    batch_max_bytes: int
    event_max_bytes: int
    flush_interval_ms: int
    queue_max_events: int
    cache_max_bytes: int
    cache_max_age_s: int
    http_timeout_ms: int
    compression: Literal["deflate", "gzip", "none"]
    retry_initial_ms: int
    retry_max_ms: int
    retry_max_attempts: int


# Compact JSON, UTF-8 as is; NaN and Infinity are not JSON and are refused here.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class _State:
    """What this module knows of the session. Guarded by ``lock`` where it changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: The configuration of the live session this module started; None when none is.
        self.config: Optional[Dict[str, Any]] = None
        #: Who started it: None for :func:`init`, else the exporter that did.
        self.owner: object = None
        #: This process was forked from the one that owns the live session.
        self.inherited = False
        #: This process was forked and has not started a session of its own.
        self.forked_without_init = False
        self.inherited_noted = False
        #: A restart (shutdown, then init) is under way: calls that miss the session wait.
        self.restarting = False


_state = _State()


def _config(ikey: str, endpoint: str | None, ext: Ext | None, options: Mapping[str, Any]) -> Dict[str, Any]:
    config: Dict[str, Any] = {"ikey": ikey}
    if endpoint is not None:
        config["endpoint"] = endpoint
    if ext is not None:
        config["ext"] = {name: dict(fields) for name, fields in ext.items()}
    for key, value in options.items():
        config[key] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return config


def _start(config: Dict[str, Any], owner: object = None) -> None:
    """``tel_init`` with ``config``; records the session as this module's."""
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidConfigError(f"the configuration is not JSON-serialisable: {e}") from e
    with _state.lock:
        _logging.install()
        status = _lib.tel_init(text.encode("utf-8", "surrogatepass"))
        if status:
            raise error_for(status)
        _state.config = config
        _state.owner = owner
        _state.inherited = False
        _state.inherited_noted = False
        _state.forked_without_init = False


def init(
    ikey: str,
    *,
    endpoint: str | None = None,
    ext: Ext | None = None,
    **options: Unpack[Options],
) -> None:
    """Starts the process-wide telemetry session.

    ``ikey`` is the full instrumentation key ``<tenant_token>-<rest>``. ``endpoint`` and ``ext``
    and every other keyword are the configuration keys of the library (a keyword left out, or
    ``endpoint``/``ext`` left at None, takes the library's default); ``cache_path=None``
    disables the on-disk cache. Does no network I/O.

    Raises :class:`InvalidConfigError` naming the offending key or field, or
    :class:`AlreadyInitializedError` while a session is live. With opt-out (``enabled=False``,
    ``TEL_DISABLE``, ``DO_NOT_TRACK=1``) it succeeds and the session does nothing.
    """
    _start(_config(ikey, endpoint, ext, options))


def _note_inherited() -> None:
    if not _state.inherited_noted:
        _state.inherited_noted = True
        _logging.logger.debug(
            "this process was forked from the one that owns the telemetry session: its events "
            "are dropped here; call onecollector_tel.init() in this process to send from it"
        )


def _missed_session(status: int, call: Callable[..., int], *args: Any) -> int:
    """A call answered ``TEL_ERR_NOT_INITIALIZED``: in a forked child that is expected and
    answered OK; during a restart the call waits for the new session and is tried again."""
    if _state.inherited:
        _note_inherited()
        return _native.TEL_OK
    if _state.restarting and _state.lock.acquire(timeout=30):
        try:
            if _state.config is not None:
                return int(call(*args))
        finally:
            _state.lock.release()
    return status


def log(name: str, properties: Mapping[str, Any] | None = None, **props: Any) -> None:
    """Logs one event: ``name`` (4-100 characters of ``[A-Za-z0-9_.]``, starting and ending with
    a letter or digit) and its properties, any JSON-serialisable values, given as a mapping,
    as keywords, or both (keywords win).

    Never blocks on I/O. Raises :class:`InvalidEventError` for an event the library refuses or
    properties that are not JSON-serialisable, :class:`NotInitializedError` without a session.
    Never raises for a full queue (the event is dropped and counted in
    ``stats()["dropped_queue_full"]``), nor with opt-out or inside a kill window. In a process
    forked from the one that started the session it does nothing.
    """
    if not isinstance(name, str):
        raise TypeError(f"the event name must be a str, not {type(name).__name__}")
    raw_name = name.encode("utf-8", "surrogatepass")
    if properties is None and not props:
        payload = None
    else:
        try:
            if props:
                merged: Any = dict(properties, **props) if properties else props
            else:
                merged = properties
            payload = _encode(merged).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as e:
            raise InvalidEventError(f"the properties of event {name!r} are not JSON-serialisable: {e}") from e
    status = _lib.tel_log(raw_name, payload)
    if status:
        if status == _native.TEL_ERR_QUEUE_FULL:
            return
        if status == _native.TEL_ERR_NOT_INITIALIZED:
            status = _missed_session(status, _lib.tel_log, raw_name, payload)
            if status in (_native.TEL_OK, _native.TEL_ERR_QUEUE_FULL):
                return
        raise error_for(status)


def flush(timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> None:
    """Waits until every event logged before the call is resolved: accepted, rejected,
    dropped for a named reason, or written to the cache after its retries ran out.

    ``timeout`` is in seconds (None: as long as the ABI can wait). Raises
    :class:`TelemetryTimeoutError` when it passes (the rest stays queued for retry) and
    :class:`NotInitializedError` without a session. In a forked child it does nothing.
    """
    ms = _native.timeout_ms(timeout)
    status = _lib.tel_flush(ms)
    if status == _native.TEL_ERR_NOT_INITIALIZED:
        status = _missed_session(status, _lib.tel_flush, ms)
    if status:
        raise error_for(status)


def shutdown(timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
    """Ends the session: stops accepting events, delivers what it can within ``timeout``
    seconds and writes the rest to the cache file. Returns within the deadline plus a small
    margin even when the collector hangs. A new :func:`init` may follow.

    Does nothing when no session is live, so it is safe in ``finally`` blocks. Raises
    :class:`TelemetryTimeoutError` when the deadline was reached; the session is over all the
    same, and what was not delivered was persisted. In a forked child it ends nothing of the
    parent's.
    """
    ms = _native.timeout_ms(timeout)
    with _state.lock:
        _state.config = None
        _state.owner = None
        _state.inherited = False
    status = _lib.tel_shutdown(ms)
    if status and status != _native.TEL_ERR_NOT_INITIALIZED:
        raise error_for(status)


def stats() -> Dict[str, Any]:
    """The session's counters (abi.md, "Stats"): ``logged``, ``sent``, ``rejected``,
    ``dropped_queue_full``, ``pending``, ``killed_until_ms`` and the rest. After
    :func:`shutdown` the last session's figures stay readable until the next :func:`init`."""
    result: Dict[str, Any] = json.loads(_native.stats_json())
    return result


def version() -> str:
    """The version of the loaded library, e.g. ``"0.1.0"``."""
    raw: bytes = _lib.tel_version()
    return raw.decode("ascii")


@contextlib.contextmanager
def session(
    ikey: str,
    *,
    endpoint: str | None = None,
    ext: Ext | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    **options: Unpack[Options],
) -> Iterator[None]:
    """``with onecollector_tel.session(ikey, ...):`` runs the block inside a session.

    Takes the arguments of :func:`init`. On leaving, even by an exception, the session is shut
    down within ``shutdown_timeout`` seconds; reaching that deadline is logged as a warning on
    the ``onecollector_tel`` logger rather than raised (the undelivered events were persisted).
    """
    init(ikey, endpoint=endpoint, ext=ext, **options)
    try:
        yield
    finally:
        try:
            shutdown(shutdown_timeout)
        except TelemetryTimeoutError as e:
            _logging.logger.warning("telemetry shutdown: %s", e)


# --- for the OpenTelemetry adapter -------------------------------------------------------


def _owned_by(owner: object) -> bool:
    return _state.config is not None and _state.owner is owner and not _state.inherited


def _restart(owner: object, config: Dict[str, Any], timeout: float) -> Optional[TelemetryError]:
    """Replaces the session ``owner`` started by one with ``config``.

    Events logged meanwhile on other threads wait for the new session. If the library refuses
    ``config``, the previous configuration is started again and the refusal returned.
    """
    with _state.lock:
        if not _owned_by(owner):
            return NotInitializedError("the session is no longer this owner's to restart")
        previous = _state.config
        assert previous is not None
        _state.restarting = True
        try:
            status = _lib.tel_shutdown(_native.timeout_ms(timeout))
            if status not in (_native.TEL_OK, _native.TEL_ERR_TIMEOUT):
                _state.config = None
                return error_for(status)
            try:
                _start(config, owner)
                return None
            except TelemetryError as refused:
                _state.config = None
                _start(previous, owner)
                return refused
        finally:
            _state.restarting = False


def _stop(owner: object, timeout: float | None) -> None:
    """Shuts the session down if ``owner`` started it and it is still live."""
    with _state.lock:
        if not _owned_by(owner):
            return
    shutdown(timeout)


# --- process lifetime ----------------------------------------------------------------------


def _at_exit() -> None:
    """Shuts down a session the host left open (short deadline), then detaches the logger
    before Python starts finalizing (see ``_logging``)."""
    try:
        if _state.config is not None and not _state.inherited:
            try:
                shutdown(ATEXIT_SHUTDOWN_TIMEOUT)
                _logging.logger.debug("telemetry session shut down at interpreter exit")
            except TelemetryError as e:
                _logging.logger.debug("telemetry shutdown at interpreter exit: %s", e)
    finally:
        _logging.detach(call_library=not _state.forked_without_init)


def _after_fork_in_child() -> None:
    # Another thread may have held the lock at fork time; the child has only this thread.
    _state.lock = threading.RLock()
    _state.restarting = False
    _state.forked_without_init = True
    if _state.config is not None:
        _state.inherited = True
        _state.inherited_noted = False


# Registered at import, after `logging` registered its own exit hook: exit hooks run last in,
# first out, so this one still reaches the host's handlers.
atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_logging.install()
