"""The Python API over the C ABI: one telemetry session for the whole process.

The binding adds what Python users expect (keyword configuration, exceptions, a context
manager, ``logging``, clean interpreter exit and fork) and decides nothing about delivery:
validation, batching, retries, kill windows and the cache are the library's.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import math
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, TypedDict, Union

from . import _logging, _native
from ._errors import (
    InvalidConfigError,
    InvalidEventError,
    NotInitializedError,
    TelemetryError,
    TelemetryTimeoutError,
    error_for,
    warn_not_durable,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

_lib = _native.lib  # releases the GIL: the calls that wait
_nolock = _native.nolock  # keeps the GIL: the calls that never block

#: Default deadline of :func:`flush`, in seconds.
DEFAULT_FLUSH_TIMEOUT = 10.0
#: Default deadline of :func:`shutdown` and of leaving :func:`session`, in seconds.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Deadline of the shutdown done at interpreter exit for a host that forgot it, in seconds.
ATEXIT_SHUTDOWN_TIMEOUT = 1.0

#: Documented Common Schema 4.0 extension fields, as ``{"app": {"ver": "1.2"}, ...}``.
Ext = Mapping[str, Mapping[str, str]]

#: The priorities of :func:`log_event` (abi.md, "Per-event options").
Priority = Literal["normal", "high", "critical"]

#: An event time: an aware ``datetime``, or seconds since the Unix epoch.
EventTime = Union[datetime.datetime, int, float]


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
    #: 0.3.0: what a missing or outdated consent record means: ``"granted"`` (the default) or
    #: ``"required"`` (events wait in memory until :func:`set_consent`).
    consent: Literal["granted", "required"]
    #: 0.3.0: the version of the consent notice; a record of a lower one counts as missing.
    consent_version: int
    #: 0.3.0: common properties merged into every event's ``data`` (the event's own keys win).
    properties: Mapping[str, Any]
    #: 0.3.0: ``{"rate": r, "events": {"Exact.Name": r2}}``, rates in [0, 1].
    sample: Mapping[str, Any]
    #: 0.3.0: the detectors applied to string values (``"email"``, ``"user_path"``, ``"ipv4"``,
    #: ``"ipv6"``, ``"guid"``, ``"token"``); ``[]`` turns scrubbing off.
    scrub: Sequence[str]
    #: 0.3.0: a file that receives one line per event the collector answered.
    audit_path: Union[str, "os.PathLike[str]"]
    #: 0.3.0: the audit file's bound before it rotates.
    audit_max_bytes: int
    #: 0.3.0: how many batches may be on the wire at once (1-16).
    max_inflight_requests: int


# Compact JSON, UTF-8 as is; NaN and Infinity are not JSON and are refused here.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class _State:
    """What this module knows of the session. Guarded by ``lock`` where it changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: The configuration of the live session this module started; None when none is.
        self.config: Optional[Dict[str, Any]] = None
        #: This process was forked from the one that owns the live session.
        self.inherited = False
        #: This process was forked and has not started a session of its own.
        self.forked_without_init = False
        self.inherited_noted = False
        #: Warns of events dropped for a full queue; one per session.
        self.queue_full = _logging.QueueFullWarning("telemetry session")


_state = _State()


#: Keywords of the hand-written OpenTelemetry exporter that have another form here: the
#: keyword, and what to write instead.
_MIGRATED = {
    "cache": "the library keeps its own cache file: give cache_path=<file>, or leave it out "
    "for the default per-user file, or cache_path=None for no cache",
}


def _config(ikey: str, endpoint: str | None, ext: Ext | None, options: Mapping[str, Any]) -> Dict[str, Any]:
    for keyword, instead in _MIGRATED.items():
        if keyword in options:
            raise TypeError(
                f"{keyword}= is the keyword of the hand-written exporter, not of onecollector_tel: {instead} "
                "(MIGRATION.md of the onecollector-tel Python package, section 2, maps every argument)"
            )
    config: Dict[str, Any] = {"ikey": ikey}
    if endpoint is not None:
        config["endpoint"] = endpoint
    if ext is not None:
        config["ext"] = {name: dict(fields) for name, fields in ext.items()}
    for key, value in options.items():
        config[key] = _json_ready(value)
    return config


def _json_ready(value: Any) -> Any:
    """A keyword's value as ``json`` writes it: paths as text, mappings as objects, tuples and
    other sequences (``scrub=("email",)``) as arrays."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_json_ready(item) for item in value]
    return value


def _start(config: Dict[str, Any]) -> None:
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
        _state.queue_full = _logging.QueueFullWarning("telemetry session")
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


def _missed_session(status: int) -> int:
    """A call answered ``TEL_ERR_NOT_INITIALIZED``: in a forked child that is expected and
    answered OK."""
    if _state.inherited:
        _note_inherited()
        return _native.TEL_OK
    return status


def _payload(name: str, properties: Mapping[str, Any] | None, props: Mapping[str, Any]) -> "tuple[bytes, Optional[bytes]]":
    """The event's name and properties as the ABI takes them."""
    if not isinstance(name, str):
        raise TypeError(f"the event name must be a str, not {type(name).__name__}")
    raw_name = name.encode("utf-8", "surrogatepass")
    if properties is None and not props:
        return raw_name, None
    try:
        if props:
            merged: Any = dict(properties, **props) if properties else props
        else:
            merged = properties
        return raw_name, _encode(merged).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidEventError(f"the properties of event {name!r} are not JSON-serialisable: {e}") from e


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MILLISECOND = datetime.timedelta(milliseconds=1)


def _time_ms(value: EventTime) -> int:
    """An event time as Unix milliseconds: an aware ``datetime``, or epoch seconds."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEventError(
                "time must be an aware datetime (e.g. datetime.now(timezone.utc)) or seconds since "
                f"the Unix epoch; a naive datetime names no moment: {value!r}"
            )
        return (value - _EPOCH) // _MILLISECOND
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"time must be an aware datetime or seconds since the Unix epoch, not {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEventError(f"time must be a finite number of seconds, not {value!r}")
    return value * 1000 if isinstance(value, int) else round(value * 1000)


def _options(time: EventTime | None, priority: str, ext: Mapping[str, Any] | None) -> Optional[bytes]:
    """The ``options_json`` of ``tel_log_ex``; None when every option is the default."""
    options: Dict[str, Any] = {}
    if time is not None:
        options["time"] = _time_ms(time)
    if priority != "normal":
        options["priority"] = priority
    if ext:
        options["ext"] = ext
    if not options:
        return None
    try:
        return _encode(options).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidEventError(f"the event options are not JSON-serialisable: {e}") from e


def _require(function: str, call: str, since: str = "0.2.0") -> None:
    """Raises when the loaded library lacks ``function`` (a library older than ABI 1.1, or
    than 1.2 with ``since="0.3.0"``)."""
    if not _native.has(function):
        raise TelemetryError(
            f"{call} needs onecollector-tel {since} or later; the loaded library is {version()} "
            f"({_native.LIBRARY_PATH})"
        )


def log(name: str, properties: Mapping[str, Any] | None = None, **props: Any) -> None:
    """Logs one event: ``name`` (4-100 characters of ``[A-Za-z0-9_.]``, starting and ending with
    a letter or digit) and its properties, any JSON-serialisable values, given as a mapping,
    as keywords, or both (keywords win).

    Never blocks on I/O, and keeps the GIL for the few microseconds it takes. Raises
    :class:`InvalidEventError` for an event the library refuses or properties that are not
    JSON-serialisable, :class:`NotInitializedError` without a session. Never raises for a full
    queue: the event is dropped and counted in ``stats()["dropped_queue_full"]``, and a WARNING
    on the ``onecollector_tel`` logger says so the first time, then at most once a minute with
    the count. Nor does it raise with
    opt-out or inside a kill window. In a process forked from the one that started the session
    it does nothing.
    """
    raw_name, payload = _payload(name, properties, props)
    status = _nolock.tel_log(raw_name, payload)
    if status:
        if status == _native.TEL_ERR_QUEUE_FULL:
            _state.queue_full.dropped()
            return
        if status == _native.TEL_ERR_NOT_INITIALIZED:
            status = _missed_session(status)
            if status in (_native.TEL_OK, _native.TEL_ERR_QUEUE_FULL):
                return
        raise error_for(status)


def log_event(
    name: str,
    properties: Mapping[str, Any] | None = None,
    *,
    time: EventTime | None = None,
    priority: Priority = "normal",
    ext: Mapping[str, Any] | None = None,
) -> None:
    """Logs one event on the default session, with per-event options (abi.md, "Per-event
    options"):

    - ``time``: when the event happened, an aware ``datetime`` or seconds since the Unix epoch
      (sent with millisecond precision); None: now.
    - ``priority``: ``"normal"``, ``"high"`` or ``"critical"``. A full queue makes room for a
      higher priority by dropping the oldest queued event of a lower one (counted in
      ``dropped_evicted``); a critical event is in the cache file before the call returns and
      is sent at once (this call then releases the GIL while it writes). When it cannot be
      written (a full disk...), it is sent all the same and :class:`NotDurableWarning` is
      issued.
    - ``ext``: Common Schema extension fields of this event alone, merged over the session's
      field by field: the documented ones, plus ``dt`` (``traceId``, ``spanId``,
      ``traceFlags``) and ``ex`` (``type``, ``msg``, ``stack``).

    Raises as :func:`log` does, and :class:`InvalidEventError` naming a refused option.
    """
    _require("tel_log_ex", "onecollector_tel.log_event()")
    raw_name, payload = _payload(name, properties, {})
    options = _options(time, priority, ext)
    function = _lib.tel_log_ex if priority == "critical" else _nolock.tel_log_ex
    status = function(raw_name, payload, options)
    if status:
        if status == _native.TEL_ERR_QUEUE_FULL:
            _state.queue_full.dropped()
            return
        if status == _native.TEL_ERR_NOT_DURABLE:
            warn_not_durable()
            return
        if status == _native.TEL_ERR_NOT_INITIALIZED:
            status = _missed_session(status)
            if status in (_native.TEL_OK, _native.TEL_ERR_QUEUE_FULL):
                return
        raise error_for(status)


def purge(ikey: str, *, cache_path: Union[str, "os.PathLike[str]", None] = None) -> None:
    """Deletes every undelivered event a session with this key (and cache file) would send:
    call it when the user revokes consent. ``cache_path`` is the cache file given to
    :func:`init` or :class:`Client`; None means the default one of the key's tenant.

    Starts no session and does no network I/O; safe while other processes use the cache (their
    undelivered events go too). The device id and a kill window stay. Raises
    :class:`InvalidConfigError` for a bad key.
    """
    _require("tel_purge", "onecollector_tel.purge()")
    config: Dict[str, Any] = {"ikey": ikey}
    if cache_path is not None:
        config["cache_path"] = os.fspath(cache_path)
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as e:
        raise InvalidConfigError(f"the purge configuration is not JSON-serialisable: {e}") from e
    status = _lib.tel_purge(text.encode("utf-8", "surrogatepass"))
    if status:
        raise error_for(status)


#: The consent states as :func:`consent` names them, by the ABI's codes.
Consent = Literal["unknown", "granted", "denied"]
_CONSENT_NAMES: Dict[int, Consent] = {
    _native.TEL_CONSENT_UNKNOWN: "unknown",
    _native.TEL_CONSENT_GRANTED: "granted",
    _native.TEL_CONSENT_DENIED: "denied",
}


def _consent_code(granted: bool) -> int:
    if not isinstance(granted, bool):
        raise TypeError(f"granted must be True or False, not {type(granted).__name__}")
    return _native.TEL_CONSENT_GRANTED if granted else _native.TEL_CONSENT_DENIED


def _consent_name(code: int) -> Consent:
    try:
        return _CONSENT_NAMES[code]
    except KeyError:
        raise TelemetryError(f"the library answered an unknown consent state {code}") from None


def _property_args(name: str, value: Any) -> "tuple[bytes, Optional[bytes]]":
    """The name and ``value_json`` of ``tel_set_property``; None removes the property."""
    if not isinstance(name, str):
        raise TypeError(f"the property name must be a str, not {type(name).__name__}")
    if value is None:
        return name.encode("utf-8", "surrogatepass"), None
    try:
        raw = _encode(_json_ready(value)).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidEventError(f"the value of property {name!r} is not JSON-serialisable: {e}") from e
    return name.encode("utf-8", "surrogatepass"), raw


def set_consent(granted: bool) -> None:
    """Records the user's answer to the consent question for the default session (abi.md,
    "Consent"): the record is written beside the device id, with the configured
    ``consent_version``.

    ``True``: the events waiting in memory are sent, and the cache is replayed. ``False``: the
    waiting events are dropped (``stats()["dropped_consent"]``), the tenant's undelivered cache
    entries and the device id are deleted, and from then on every event is dropped and counted.
    Raises :class:`NotInitializedError` without a session. Releases the GIL (it writes a file).
    """
    state = _consent_code(granted)
    _require("tel_set_consent", "onecollector_tel.set_consent()", "0.3.0")
    status = _lib.tel_set_consent(state)
    if status:
        raise error_for(status)


def consent() -> Consent:
    """The default session's consent state: ``"unknown"`` (``consent="required"`` and no answer
    recorded for this ``consent_version``: events wait in memory, nothing is sent or written),
    ``"granted"`` or ``"denied"``. Raises :class:`NotInitializedError` without a session."""
    _require("tel_consent", "onecollector_tel.consent()", "0.3.0")
    code = int(_nolock.tel_consent())
    if code < 0:
        raise NotInitializedError("no telemetry session: call onecollector_tel.init() first")
    return _consent_name(code)


def set_property(name: str, value: Any) -> None:
    """Adds or replaces a common property of the default session, merged into the ``data`` of
    every event logged after the call (an event's own key of that name wins); ``value`` is any
    JSON-serialisable value, and None removes the property. Raises :class:`InvalidEventError`
    for a name or value the library refuses, :class:`NotInitializedError` without a session."""
    _require("tel_set_property", "onecollector_tel.set_property()", "0.3.0")
    raw_name, raw_value = _property_args(name, value)
    status = _nolock.tel_set_property(raw_name, raw_value)
    if status:
        raise error_for(status)


def pause() -> None:
    """Stops sending on the default session: no request, no connection. Events are still
    accepted; what would be sent goes to the cache (or waits in memory without one). Idempotent;
    ``stats()["paused"]`` says which state holds. Raises :class:`NotInitializedError` without a
    session."""
    _require("tel_pause", "onecollector_tel.pause()", "0.3.0")
    status = _lib.tel_pause()
    if status:
        raise error_for(status)


def resume() -> None:
    """Restarts sending after :func:`pause`, the replay of the cache included. Idempotent.
    Raises :class:`NotInitializedError` without a session."""
    _require("tel_resume", "onecollector_tel.resume()", "0.3.0")
    status = _lib.tel_resume()
    if status:
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
        status = _missed_session(status)
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
        _state.inherited = False
    status = _lib.tel_shutdown(ms)
    if status and status != _native.TEL_ERR_NOT_INITIALIZED:
        raise error_for(status)


def stats() -> Dict[str, Any]:
    """The session's counters (abi.md, "Stats"): ``logged``, ``sent``, ``rejected``,
    ``dropped_queue_full``, ``pending``, ``killed_until_ms`` and the rest; from 0.3.0 also
    ``dropped_consent``, ``dropped_sampled``, ``scrubbed``, ``consent`` (``"unknown"``,
    ``"granted"``, ``"denied"``) and ``paused``. After
    :func:`shutdown` the last session's figures stay readable until the next :func:`init`."""
    result: Dict[str, Any] = json.loads(_native.stats_json())
    return result


def version() -> str:
    """The version of the loaded library, e.g. ``"0.1.0"``."""
    raw: bytes = _nolock.tel_version()
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


# --- process lifetime ----------------------------------------------------------------------


#: Run first by the exit hook: :class:`~onecollector_tel.Client` closes the clients left open.
_exit_hooks: List[Callable[[], None]] = []
#: How many times this process is a fork away from the one that imported the package.
_fork_generation = 0


def _at_exit() -> None:
    """Closes the clients and shuts down the session the host left open (short deadline), then
    detaches the logger before Python starts finalizing (see ``_logging``)."""
    try:
        for hook in _exit_hooks:
            try:
                hook()
            except Exception as e:  # noqa: BLE001 - the exit must go on
                _logging.logger.debug("telemetry exit hook: %s", e)
        if _state.config is not None and not _state.inherited:
            try:
                shutdown(ATEXIT_SHUTDOWN_TIMEOUT)
                _logging.logger.debug("telemetry session shut down at interpreter exit")
            except TelemetryError as e:
                _logging.logger.debug("telemetry shutdown at interpreter exit: %s", e)
    finally:
        _logging.detach(call_library=not _state.forked_without_init)


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1
    # Another thread may have held the lock at fork time; the child has only this thread.
    _state.lock = threading.RLock()
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
