"""Independent clients (ABI 1.1): each with its own key, endpoint, worker, queue, counters and
cache file, beside the default session or without it."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional

from . import _api, _logging, _native
from ._api import DEFAULT_FLUSH_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, EventTime, Ext, Priority
from ._errors import (
    InvalidArgumentError,
    InvalidConfigError,
    NotInitializedError,
    TelemetryError,
    TelemetryTimeoutError,
    error_for,
    warn_not_durable,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self, Unpack

    from ._api import Options

_lib = _native.lib
_nolock = _native.nolock

#: A delivery report (abi.md, "Delivery reports"): ``outcome``, ``events``, ``names``,
#: ``status``, ``reason``.
DeliveryReport = Dict[str, Any]

#: The clients not closed yet, closed by the package's exit hook.
_live: "weakref.WeakSet[Client]" = weakref.WeakSet()

# Which clients' on_delivery callbacks run on this thread now (a client's own callback must
# not close it: the library refuses that call).
_in_callback = threading.local()


#: Each client with an ``on_delivery`` callback, under the key the library passes back as
#: ``user_data``. The library is handed a plain number, never a pointer to a Python object.
_by_key: "Dict[int, weakref.ref[Client]]" = {}
_keys = itertools.count(1)


def _deliver(report_json: Optional[bytes], user_data: Optional[int]) -> None:
    """The C callback of every client: runs ``on_delivery`` with the report as a dict, on the
    library's thread. Nothing it raises goes back into the library: it is logged."""
    try:
        ref = _by_key.get(user_data or 0)
        client = ref() if ref is not None else None
        if client is None or client._on_delivery is None:
            return
        report = json.loads(report_json.decode("utf-8", "replace")) if report_json else {}
        running = getattr(_in_callback, "clients", None)
        if running is None:
            running = _in_callback.clients = set()
        running.add(id(client))
        try:
            client._on_delivery(report)
        finally:
            running.discard(id(client))
    except BaseException:  # noqa: BLE001 - the boundary must swallow everything
        try:
            _logging.logger.exception("the on_delivery callback of a onecollector_tel.Client raised")
        except BaseException:  # noqa: BLE001
            pass


#: The one C function every client's reports go through, kept for the life of the process: the
#: library does not wait past a close's deadline for a callback that is still running (abi.md),
#: so a call it began may still be on its way in after the client, and its Python object, are
#: gone.
_DELIVER = _native.DELIVERY_FN(_deliver)


class Client:
    """One telemetry client of its own, independent of the default session and of other clients.

    ``ikey`` is the full instrumentation key ``<tenant_token>-<rest>``; ``endpoint``, ``ext`` and
    every other keyword are the configuration keys of :func:`onecollector_tel.init` (a keyword
    left out takes the library's default; ``cache_path=None`` disables the cache). Two clients,
    or a client and the default session, may share a cache file.

    ``on_delivery``, when given, receives every delivery report as a dict (``outcome``:
    ``"sent"``, ``"rejected"``, ``"dropped_killed"``, ``"persisted"``, ``"dropped_shutdown"`` or
    ``"dropped_evicted"``; ``events``; ``names``: event name -> count; ``status``: the HTTP
    status, 0 when none; ``reason``). It runs on one of the library's threads; an exception it
    raises is logged on the ``onecollector_tel`` logger and goes no further. It may log events,
    but not close this client.

    Raises :class:`InvalidConfigError` (a ``ValueError``) naming a refused key or field. Does
    no network I/O. Use it as a context manager, or call :meth:`close`; a client left open is
    closed when it is garbage-collected or at interpreter exit, with a short deadline.
    """

    def __init__(
        self,
        ikey: str,
        *,
        endpoint: str | None = None,
        ext: Ext | None = None,
        on_delivery: Optional[Callable[[DeliveryReport], Any]] = None,
        **options: "Unpack[Options]",
    ) -> None:
        # Set first: __del__ runs even when the constructor raises.
        self._ptr: Optional[int] = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting = 0  # calls in progress with the GIL released
        self._generation = _api._fork_generation
        self._on_delivery = on_delivery
        self._delivery_key: Optional[int] = None
        self._queue_full = _logging.QueueFullWarning("telemetry client")
        _api._require("tel_client_new", "onecollector_tel.Client()")
        if on_delivery is not None and not callable(on_delivery):
            raise TypeError(f"on_delivery must be callable, not {type(on_delivery).__name__}")
        config = _api._config(ikey, endpoint, ext, options)
        try:
            text = json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidConfigError(f"the configuration is not JSON-serialisable: {e}") from e
        _logging.install()
        out = ctypes.c_void_p()
        status = _lib.tel_client_new(text.encode("utf-8", "surrogatepass"), ctypes.byref(out))
        if status:
            raise error_for(status, client=True)
        self._ptr = out.value
        if on_delivery is not None:
            # The client is found by its key, weakly: a forgotten client can still be collected.
            self._delivery_key = next(_keys)
            _by_key[self._delivery_key] = weakref.ref(self)
            status = _lib.tel_client_set_delivery_callback(self._ptr, _DELIVER, self._delivery_key)
            if status:
                error = error_for(status, client=True)
                self._release_pointer(0)
                raise error
        _live.add(self)

    # --- logging ---------------------------------------------------------------------------

    def log(self, name: str, properties: Mapping[str, Any] | None = None, **props: Any) -> None:
        """Logs one event through this client, as :func:`onecollector_tel.log` does for the
        default session: never blocks, never raises for a full queue (the drop is counted, and
        warned of as :func:`onecollector_tel.log` does),
        raises :class:`InvalidEventError` for an event the library refuses and
        :class:`NotInitializedError` once the client is closed."""
        raw_name, payload = _api._payload(name, properties, props)
        status = self._nonblocking(_nolock.tel_client_log, raw_name, payload)
        if status == _native.TEL_ERR_QUEUE_FULL:
            self._queue_full.dropped()
        elif status:
            raise error_for(status, client=True)

    def log_event(
        self,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        time: EventTime | None = None,
        priority: Priority = "normal",
        ext: Mapping[str, Any] | None = None,
    ) -> None:
        """Logs one event with per-event options: ``time`` (an aware ``datetime`` or epoch
        seconds), ``priority`` (``"normal"``, ``"high"``, ``"critical"``) and ``ext`` (this
        event's extension fields, ``dt`` and ``ex`` included); see
        :func:`onecollector_tel.log_event`. Raises as :meth:`log` does."""
        status = self._log_event_status(name, properties, time, priority, ext)
        if status == _native.TEL_ERR_QUEUE_FULL:
            self._queue_full.dropped()
        elif status == _native.TEL_ERR_NOT_DURABLE:
            warn_not_durable(client=True)
        elif status:
            raise error_for(status, client=True)

    def _log_event_status(
        self,
        name: str,
        properties: Mapping[str, Any] | None,
        time: EventTime | None,
        priority: str,
        ext: Mapping[str, Any] | None,
    ) -> int:
        raw_name, payload = _api._payload(name, properties, {})
        return self._log_raw(raw_name, payload, _api._options(time, priority, ext), priority == "critical")

    def _log_raw(self, raw_name: bytes, payload: Optional[bytes], options: Optional[bytes], blocking: bool) -> int:
        """``tel_client_log_ex`` with encoded arguments; returns the status (the last error is
        this thread's). A critical event writes the cache file: its call releases the GIL."""
        if blocking:
            return self._waiting_call(_lib.tel_client_log_ex, raw_name, payload, options)
        return self._nonblocking(_nolock.tel_client_log_ex, raw_name, payload, options)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[Callable[[bytes, Optional[bytes], Optional[bytes]], int]]:
        """For many non-critical events in a row: yields ``log(raw_name, payload, options) ->
        status`` (``tel_client_log_ex``, GIL kept), the client's lock held once for all of them.
        Raises :class:`NotInitializedError` once the client is closed."""
        with self._lock:
            ptr = self._live_pointer()
            if ptr is None:
                yield lambda raw_name, payload, options: _native.TEL_OK
                return
            function = _nolock.tel_client_log_ex
            yield lambda raw_name, payload, options: function(ptr, raw_name, payload, options)

    # --- waiting -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> None:
        """Waits (seconds; None: as long as the ABI can) until every event logged before the
        call is resolved: sent, rejected, dropped for a named reason, or written to the cache
        after its retries ran out. Raises :class:`TelemetryTimeoutError` when the deadline
        passes (the rest stays queued), :class:`NotInitializedError` once closed."""
        status = self._waiting_call(_lib.tel_client_flush, _native.timeout_ms(timeout))
        if status:
            raise error_for(status, client=True)

    def close(self, timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        """Stops the client: delivers what it can within ``timeout`` seconds, writes the rest to
        the cache file, ends its thread. ``on_delivery`` is never called after it returns (a call
        still running then is not waited for past the deadline: it runs to its end).
        Raises :class:`TelemetryTimeoutError` when the deadline was reached (the client is
        closed all the same; what was not delivered was persisted). A second call does nothing.
        A ``flush()`` in progress on another thread returns first; calls made after this one
        starts raise :class:`NotInitializedError`.
        """
        running = getattr(_in_callback, "clients", None)
        if running and id(self) in running:
            raise InvalidArgumentError(
                "Client.close() cannot be called from the client's own on_delivery callback; "
                "close it from another thread"
            )
        status = self._release_pointer(_native.timeout_ms(timeout))
        if status:
            raise error_for(status, client=True)

    def _release_pointer(self, timeout_ms: int) -> int:
        with self._lock:
            ptr, self._ptr = self._ptr, None
            # Calls that released the GIL with the pointer in hand finish first.
            while self._waiting:
                self._idle.wait()
        _live.discard(self)
        if ptr is None:
            return _native.TEL_OK
        if self._generation != _api._fork_generation:
            # Forked: the client's thread lives in the parent; leave its memory alone.
            return _native.TEL_OK
        status = int(_lib.tel_client_close(ptr, timeout_ms))
        if status == _native.TEL_ERR_INVALID_ARGUMENT:
            # Refused from one of the client's own threads (a logging callback on its worker):
            # the client stays open, and usable.
            with self._lock:
                self._ptr = ptr
            _live.add(self)
        elif self._delivery_key is not None:
            # No report is handed over any more: a call still running finds its client gone.
            _by_key.pop(self._delivery_key, None)
        return status

    # --- consent, properties, pause ------------------------------------------------------------

    def set_consent(self, granted: bool) -> None:
        """Records the user's answer for this client, as :func:`onecollector_tel.set_consent`
        does for the default session: ``True`` sends what waits, ``False`` drops it, purges the
        tenant's cache and the device id, and drops every later event. Raises
        :class:`NotInitializedError` once closed."""
        _api._require("tel_client_set_consent", "Client.set_consent()", "0.3.0")
        status = self._waiting_call(_lib.tel_client_set_consent, _api._consent_code(granted))
        if status:
            raise error_for(status, client=True)

    def consent(self) -> "_api.Consent":
        """This client's consent state: ``"unknown"``, ``"granted"`` or ``"denied"``. Raises
        :class:`NotInitializedError` once closed."""
        _api._require("tel_client_consent", "Client.consent()", "0.3.0")
        code = self._nonblocking(_nolock.tel_client_consent)
        return _api._consent_name(code)

    def set_property(self, name: str, value: Any) -> None:
        """Adds or replaces a common property of this client (``value`` None removes it), as
        :func:`onecollector_tel.set_property` does. Raises :class:`InvalidEventError` for a
        name or value the library refuses, :class:`NotInitializedError` once closed."""
        _api._require("tel_client_set_property", "Client.set_property()", "0.3.0")
        raw_name, raw_value = _api._property_args(name, value)
        status = self._nonblocking(_nolock.tel_client_set_property, raw_name, raw_value)
        if status:
            raise error_for(status, client=True)

    def pause(self) -> None:
        """Stops this client's sending (no request, no connection; events are still accepted
        and go to the cache), as :func:`onecollector_tel.pause` does. Idempotent."""
        _api._require("tel_client_pause", "Client.pause()", "0.3.0")
        status = self._waiting_call(_lib.tel_client_pause)
        if status:
            raise error_for(status, client=True)

    def resume(self) -> None:
        """Restarts this client's sending after :meth:`pause`, the replay included. Idempotent."""
        _api._require("tel_client_resume", "Client.resume()", "0.3.0")
        status = self._waiting_call(_lib.tel_client_resume)
        if status:
            raise error_for(status, client=True)

    # --- state -------------------------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """The client's counters (abi.md, "Stats"), as :func:`onecollector_tel.stats` gives the
        default session's. Raises :class:`NotInitializedError` once the client is closed."""
        with self._lock:
            ptr = self._live_pointer()
            if ptr is None:
                return {"enabled": False}
            text = _native._read_snprintf(lambda buf, size: _nolock.tel_client_stats_json(ptr, buf, size))
        result: Dict[str, Any] = json.loads(text)
        return result

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._ptr is None

    def __enter__(self) -> "Self":
        return self

    def __exit__(
        self,
        exc_type: "type[BaseException] | None",
        exc: "BaseException | None",
        traceback: "TracebackType | None",
    ) -> None:
        """Closes the client with the default deadline; reaching it is logged as a warning, not
        raised (what was not delivered was persisted)."""
        try:
            self.close()
        except TelemetryTimeoutError as e:
            _logging.logger.warning("telemetry client close: %s", e)

    def __del__(self) -> None:
        try:
            if self._ptr is not None:
                self._release_pointer(_native.timeout_ms(_api.ATEXIT_SHUTDOWN_TIMEOUT))
        except BaseException:  # noqa: BLE001 - nothing may escape a finalizer
            pass

    # --- calls -------------------------------------------------------------------------------

    def _live_pointer(self) -> Optional[int]:
        """The pointer, under the lock; None in a forked child (calls there do nothing); raises
        once closed."""
        if self._ptr is None:
            raise NotInitializedError("the client is closed: make a new onecollector_tel.Client()")
        if self._generation != _api._fork_generation:
            return None
        return self._ptr

    def _nonblocking(self, function: Any, *args: Any) -> int:
        # The call keeps the GIL and never blocks, so holding the lock across it is cheap; close()
        # takes the lock before it frees the client.
        with self._lock:
            ptr = self._live_pointer()
            if ptr is None:
                return _native.TEL_OK
            return int(function(ptr, *args))

    def _waiting_call(self, function: Any, *args: Any) -> int:
        with self._lock:
            ptr = self._live_pointer()
            if ptr is None:
                return _native.TEL_OK
            self._waiting += 1
        try:
            return int(function(ptr, *args))
        finally:
            with self._lock:
                self._waiting -= 1
                if not self._waiting:
                    self._idle.notify_all()


def validate(ikey: str, endpoint: str | None = None, ext: Ext | None = None, **options: Any) -> None:
    """Raises :class:`InvalidConfigError` naming the key or field the library refuses in this
    configuration, as :class:`Client` would; does nothing else.

    It asks the library for a client that is opted out and has no cache: such a client checks
    the whole configuration, then starts no thread and sends, writes and deletes nothing, so
    the calls keep the GIL. ``enabled`` and ``cache_path`` are checked here instead.
    """
    enabled = options.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidConfigError(f"enabled must be true or false, not {enabled!r}")
    cache_path = options.pop("cache_path", None)
    if cache_path is not None and not isinstance(cache_path, (str, os.PathLike)):
        raise InvalidConfigError(f"cache_path must be a path or None, not {type(cache_path).__name__}")
    config = _api._config(ikey, endpoint, ext, dict(options, enabled=False, cache_path=None))
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidConfigError(f"the configuration is not JSON-serialisable: {e}") from e
    out = ctypes.c_void_p()
    with _logging.quiet():  # its "opt-out" line would mislead the host
        status = _nolock.tel_client_new(text.encode("utf-8", "surrogatepass"), ctypes.byref(out))
        if status:
            raise error_for(status, client=True)
        _nolock.tel_client_close(out.value, 0)


def _close_all() -> None:
    """At interpreter exit: closes the clients the host left open, with the short deadline."""
    for client in list(_live):
        try:
            client.close(_api.ATEXIT_SHUTDOWN_TIMEOUT)
        except TelemetryError as e:
            _logging.logger.debug("telemetry client close at interpreter exit: %s", e)


_api._exit_hooks.append(_close_all)
