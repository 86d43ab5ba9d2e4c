"""The library's status codes as one exception hierarchy.

Every exception carries the library's own message (``tel_last_error``) and its status code.
Each class also derives from the built-in exception a Python caller would expect, so that
``except ValueError`` around a bad configuration keeps working.
"""

from __future__ import annotations

import re

from . import _native

#: The Python call behind each C function, for the messages of the default session's calls.
_MODULE_CALLS = {
    "tel_init": "onecollector_tel.init()",
    "tel_log": "onecollector_tel.log()",
    "tel_log_ex": "onecollector_tel.log_event()",
    "tel_flush": "onecollector_tel.flush()",
    "tel_shutdown": "onecollector_tel.shutdown()",
    "tel_stats_json": "onecollector_tel.stats()",
    "tel_version": "onecollector_tel.version()",
    "tel_purge": "onecollector_tel.purge()",
    "tel_client_new": "onecollector_tel.Client()",
    "tel_client_log": "Client.log()",
    "tel_client_log_ex": "Client.log_event()",
    "tel_client_flush": "Client.flush()",
    "tel_client_stats_json": "Client.stats()",
    "tel_client_close": "Client.close()",
    "tel_set_delivery_callback": "the on_delivery callback",
    "tel_client_set_delivery_callback": "the on_delivery callback",
    "tel_set_logger": "the logging callback",
    "tel_set_consent": "onecollector_tel.set_consent()",
    "tel_consent": "onecollector_tel.consent()",
    "tel_set_property": "onecollector_tel.set_property()",
    "tel_pause": "onecollector_tel.pause()",
    "tel_resume": "onecollector_tel.resume()",
    "tel_client_set_consent": "Client.set_consent()",
    "tel_client_consent": "Client.consent()",
    "tel_client_set_property": "Client.set_property()",
    "tel_client_pause": "Client.pause()",
    "tel_client_resume": "Client.resume()",
}

#: For the calls of a :class:`~onecollector_tel.Client`: the library may name a client's call
#: by its process-wide twin ("tel_flush timed out").
_CLIENT_CALLS = dict(
    _MODULE_CALLS,
    tel_init="onecollector_tel.Client()",
    tel_log="Client.log()",
    tel_log_ex="Client.log_event()",
    tel_flush="Client.flush()",
    tel_shutdown="Client.close()",
    tel_stats_json="Client.stats()",
    tel_set_consent="Client.set_consent()",
    tel_consent="Client.consent()",
    tel_set_property="Client.set_property()",
    tel_pause="Client.pause()",
    tel_resume="Client.resume()",
)

_C_NAME = re.compile(r"\btel_[a-z_]+\b")


def python_names(message: str, client: bool = False) -> str:
    """``message`` with the C functions it names replaced by the Python calls that make them:
    "call tel_init first" becomes "call onecollector_tel.init() first". ``client`` says the
    message answers a call of a ``Client``."""
    if "tel_" not in message:
        return message
    calls = _CLIENT_CALLS if client else _MODULE_CALLS
    return _C_NAME.sub(lambda m: calls.get(m.group(0), m.group(0)), message)


class TelemetryError(Exception):
    """A call into the telemetry library failed; ``status`` is the ABI's code."""

    status: int = -1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgumentError(TelemetryError, ValueError):
    """A string was not valid UTF-8 (``TEL_ERR_INVALID_ARGUMENT``)."""

    status = _native.TEL_ERR_INVALID_ARGUMENT


class InvalidConfigError(TelemetryError, ValueError):
    """``init`` rejected the configuration; the message names the key or field
    (``TEL_ERR_INVALID_CONFIG``)."""

    status = _native.TEL_ERR_INVALID_CONFIG


class InvalidEventError(TelemetryError, ValueError):
    """``log`` rejected the event: bad name, properties that are not a JSON object or not
    JSON-serialisable, or an event too large (``TEL_ERR_INVALID_EVENT``)."""

    status = _native.TEL_ERR_INVALID_EVENT


class NotInitializedError(TelemetryError, RuntimeError):
    """No session is live: ``init`` was not called, or ``shutdown`` was
    (``TEL_ERR_NOT_INITIALIZED``)."""

    status = _native.TEL_ERR_NOT_INITIALIZED


class AlreadyInitializedError(TelemetryError, RuntimeError):
    """``init`` while a session is live (``TEL_ERR_ALREADY_INITIALIZED``)."""

    status = _native.TEL_ERR_ALREADY_INITIALIZED


class QueueFullError(TelemetryError):
    """The in-memory queue was full (``TEL_ERR_QUEUE_FULL``).

    ``log`` never raises it: a full queue drops the event and counts it in
    ``stats()["dropped_queue_full"]``. The class exists so that every status has one.
    """

    status = _native.TEL_ERR_QUEUE_FULL


class TelemetryTimeoutError(TelemetryError, TimeoutError):
    """``flush`` or ``shutdown`` reached its deadline (``TEL_ERR_TIMEOUT``).

    After ``flush`` the undelivered events stay queued for retry; after ``shutdown`` they
    were written to the cache file (or counted as dropped when persistence is off).
    """

    status = _native.TEL_ERR_TIMEOUT


class InternalError(TelemetryError):
    """An unexpected failure inside the library; it stays usable (``TEL_ERR_INTERNAL``)."""

    status = _native.TEL_ERR_INTERNAL


class NotDurableWarning(UserWarning):
    """A ``"critical"`` event was queued and will be sent, but could not be written to the cache
    file (a full disk, a cache folder that cannot be written): it would not survive the end of
    the process (``TEL_ERR_NOT_DURABLE``).

    ``log_event`` warns with it rather than raise: the event is not lost, only its durability.
    ``stats()["not_durable"]`` counts such events. To make it an error, use the ``warnings``
    filters (``warnings.simplefilter("error", NotDurableWarning)``).
    """

    status = _native.TEL_ERR_NOT_DURABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def warn_not_durable(client: bool = False) -> None:
    """After a ``TEL_ERR_NOT_DURABLE`` answer: a :class:`NotDurableWarning` with the library's
    message, pointing at the caller of ``log_event``."""
    import warnings

    message = python_names(_native.last_error(), client) or "critical event not written to the cache file"
    warnings.warn(NotDurableWarning(message), stacklevel=3)


_BY_STATUS: dict[int, type[TelemetryError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        InvalidConfigError,
        InvalidEventError,
        NotInitializedError,
        AlreadyInitializedError,
        QueueFullError,
        TelemetryTimeoutError,
        InternalError,
    )
}


def error_for(status: int, message: str | None = None, client: bool = False) -> TelemetryError:
    """The exception for a non-OK status; ``message`` defaults to this thread's last error,
    with the Python calls in place of the C functions it names (see :func:`python_names`)."""
    if message is None:
        message = python_names(_native.last_error(), client) or f"telemetry call failed with status {status}"
    cls = _BY_STATUS.get(status, TelemetryError)
    return cls(message, status)
