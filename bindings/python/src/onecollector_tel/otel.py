"""An OpenTelemetry log exporter that sends through the onecollector-tel library.

It replaces a hand-written OneCollector exporter with a one-line change of import::

    from onecollector_tel.otel import OneCollectorLogExporter

    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OneCollectorLogExporter(ikey=ikey, endpoint=endpoint)))

Each exporter owns a :class:`onecollector_tel.Client` of its own: its key, endpoint, queue and
cache file are its own, whatever else the process sends (the default session, other exporters).
The constructor checks the whole configuration at once (``InvalidConfigError``, a
``ValueError``); the client starts with the first batch, whose Resource gives it its ``ext``
fields (or at once, when ``resource=`` is given).

Each log record becomes one event, mapped as the OpenTelemetry .NET OneCollector exporter maps it:

- name: a valid ``event.name`` attribute, else the record's ``event_name``, else a body that
  is a valid event name; anything else (a ``logging`` message through OpenTelemetry's
  ``LoggingHandler``) is sent as ``<event_namespace>.Log`` (``OpenTelemetry.Logs.Log`` by
  default, as the OpenTelemetry .NET OneCollector exporter names it), the body in
  ``data.body`` and the logger's name in ``data.logger``;
- ``data``: its attributes, plus ``severityText`` and ``severityNumber`` from its severity;
- ``time``: its timestamp, else its observed timestamp;
- ``ext.dt``: its trace context (``traceId``, ``spanId``, ``traceFlags``), when it has one;
- ``ext.ex``: its exception (``record.exception``, else the ``exception.type``,
  ``exception.message`` and ``exception.stacktrace`` attributes the SDK adds, which then leave
  ``data``): ``type``, ``msg``, ``stack``;
- the Resource's attributes fill documented ``ext`` fields by the table of
  :func:`resource_to_ext`; any other Resource attribute is ignored, never sent as an
  undocumented field (those make the collector refuse a whole batch). Each field is checked on
  its own: one the library refuses (a ``device_id`` without a scope prefix, say) is dropped with
  one warning naming it, and the others go out. They are the client's configuration, not
  per-event options, so they cost nothing per record.

``export`` only enqueues: delivery, batching, retries, kill windows and the cache are the
library's, on its own thread. It returns FAILURE when a record was refused (or dropped by a
full queue; each cause is logged as a WARNING) or the exporter is shut down. ``force_flush`` returns True only when everything
exported before it was resolved (sent, rejected, or dropped for a named reason), and False when
something is still pending or was only written to the cache. ``shutdown`` closes the client.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

try:
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
except ImportError as _missing:  # pragma: no cover - depends on the installed SDK
    try:  # opentelemetry-sdk before the rename to LogRecordExporter
        from opentelemetry.sdk._logs.export import LogExporter as LogRecordExporter  # type: ignore[assignment,unused-ignore]
        from opentelemetry.sdk._logs.export import LogExportResult as LogRecordExportResult  # type: ignore[assignment,unused-ignore]
    except ImportError:
        raise ImportError(
            "onecollector_tel.otel needs the OpenTelemetry SDK: pip install 'onecollector-tel[otel]'"
        ) from _missing

from . import _api, _native
from ._client import Client, validate
from ._errors import InvalidConfigError, NotInitializedError, TelemetryError, TelemetryTimeoutError
from ._logging import logger

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from typing_extensions import Unpack

    from ._api import Ext, Options

__all__ = ["DEFAULT_EVENT_NAMESPACE", "RESOURCE_TO_EXT", "OneCollectorLogExporter", "resource_to_ext"]

#: Resource attribute -> (extension, field). Nothing else of the Resource is sent.
RESOURCE_TO_EXT: Mapping[str, Tuple[str, str]] = {
    "device_id": ("device", "localId"),
    "id_status": ("device", "authId"),
    "os.arch": ("device", "deviceClass"),
    "os.name": ("os", "name"),
    "os.version": ("os", "ver"),
    "app_version": ("app", "ver"),
    "app_instance_id": ("app", "sesId"),
}

#: The attributes the SDK adds for a record's exception; they go to ``ext.ex``, not ``data``.
_EXCEPTION_ATTRIBUTES = ("exception.type", "exception.message", "exception.stacktrace")

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def resource_to_ext(resource: Optional["Resource"]) -> Dict[str, Dict[str, str]]:
    """The ``ext`` fields a Resource maps to, by :data:`RESOURCE_TO_EXT`:

    ========================  =======================
    Resource attribute        ``ext`` field
    ========================  =======================
    ``device_id``             ``device.localId``
    ``id_status``             ``device.authId``
    ``os.arch``               ``device.deviceClass``
    ``os.name``               ``os.name``
    ``os.version``            ``os.ver``
    ``app_version``           ``app.ver``
    ``app_instance_id``       ``app.sesId``
    ========================  =======================

    Other attributes (``os.release``, ``initTs``, ``service.name``, ...) are ignored. Numbers
    and booleans are written as strings; values of other types are ignored.
    """
    ext: Dict[str, Dict[str, str]] = {}
    attributes = getattr(resource, "attributes", None) or {}
    for attribute, (extension, field) in RESOURCE_TO_EXT.items():
        value = attributes.get(attribute)
        if isinstance(value, str):
            text = value
        elif isinstance(value, (bool, int, float)):
            text = str(value)
        else:
            continue
        ext.setdefault(extension, {})[field] = text
    return ext


def _field_refusal(ikey: str, extension: str, field: str, value: str) -> Optional[str]:
    """Why the library refuses ``ext.<extension>.<field> = value``, or None when it takes it."""
    try:
        validate(ikey, ext={extension: {field: value}})
    except InvalidConfigError as e:
        return str(e)
    return None


#: The default event namespace, as the OpenTelemetry .NET OneCollector exporter has it: a
#: record with no valid name of its own is sent as ``<namespace>.Log``.
DEFAULT_EVENT_NAMESPACE = "OpenTelemetry.Logs"

_VALID_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.]{2,98})[A-Za-z0-9]")


def _valid_name(value: Any) -> bool:
    return isinstance(value, str) and _VALID_NAME.fullmatch(value) is not None


def _event_name(record: Any, data: Dict[str, Any], default_name: str, logger_name: Optional[str]) -> str:
    """The record's event name; ``data`` gains what the name leaves out.

    A valid ``event.name`` attribute names the event (and leaves ``data``); else the record's
    own ``event_name``; else a body that is a valid event name (an application that logs its
    events by name). Anything else, a ``logging`` message through OpenTelemetry's
    ``LoggingHandler`` say, is sent as ``default_name`` with the body in ``data.body`` and the
    logger's name in ``data.logger``, as the OpenTelemetry .NET OneCollector exporter sends
    a log without an event name."""
    attribute = data.get("event.name")
    if _valid_name(attribute):
        del data["event.name"]
        return str(attribute)
    event_name = getattr(record, "event_name", None)
    if _valid_name(event_name):
        return str(event_name)
    body = getattr(record, "body", None)
    if _valid_name(body):
        return str(body)
    if body is not None:
        data.setdefault("body", body if isinstance(body, (str, int, float, bool, list, dict)) else str(body))
    if logger_name:
        data.setdefault("logger", logger_name)
    return default_name


def _exception_ext(record: Any, data: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """``ext.ex`` from the record's exception, else from the SDK's ``exception.*`` attributes
    (removed from ``data`` either way: they travel in ``ext.ex``)."""
    exception = getattr(record, "exception", None)
    mapped = {key: data.pop(key) for key in _EXCEPTION_ATTRIBUTES if key in data}
    if isinstance(exception, BaseException):
        cls = type(exception)
        module = cls.__module__
        return {
            "type": f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__,
            "msg": str(exception),
            "stack": "".join(traceback.format_exception(cls, exception, exception.__traceback__)),
        }
    if not mapped:
        return None
    ex: Dict[str, str] = {}
    for key, name in zip(_EXCEPTION_ATTRIBUTES, ("type", "msg", "stack")):
        if key in mapped and mapped[key] is not None:
            ex[name] = str(mapped[key])
    return ex or None


def _severity(record: Any, data: Dict[str, Any]) -> None:
    """``data.severityText`` / ``data.severityNumber`` from the record's severity."""
    number = getattr(record, "severity_number", None)
    text = getattr(record, "severity_text", None)
    value = getattr(number, "value", number)
    if isinstance(value, int) and value > 0:
        data["severityNumber"] = value
        if not text:
            text = getattr(number, "name", None)
    if text:
        data["severityText"] = str(text)


def _trace_ext(record: Any) -> Optional[Dict[str, Any]]:
    """``ext.dt`` from the record's trace context; None without a valid one."""
    trace_id = getattr(record, "trace_id", None)
    span_id = getattr(record, "span_id", None)
    if not trace_id or not span_id:
        return None
    dt: Dict[str, Any] = {"traceId": f"{trace_id:032x}", "spanId": f"{span_id:016x}"}
    flags = getattr(record, "trace_flags", None)
    if flags is not None:
        dt["traceFlags"] = int(flags)
    return dt


def _time_ms(record: Any) -> Optional[int]:
    """The record's timestamp, else its observed timestamp, in Unix milliseconds."""
    timestamp = getattr(record, "timestamp", None) or getattr(record, "observed_timestamp", None)
    return timestamp // 1_000_000 if isinstance(timestamp, int) and timestamp > 0 else None


class OneCollectorLogExporter(LogRecordExporter):
    """An OpenTelemetry ``LogRecordExporter`` whose records go through a
    :class:`onecollector_tel.Client` of its own.

    ``ikey`` is the full instrumentation key; ``endpoint`` None means the library's default
    collector. ``ext`` and the other keywords are those of :class:`onecollector_tel.Client`
    (``ext`` fields win over the Resource's). ``resource`` gives ext fields to every record, under
    those of the records' own Resource, and starts the client at once; without it the client
    starts with the first batch. ``shutdown_timeout`` bounds :meth:`shutdown`, in seconds.
    ``event_namespace`` names the records that have no valid name of their own
    (``<event_namespace>.Log``). Raises ``InvalidConfigError`` (a ``ValueError``) for an
    empty or malformed key, an empty endpoint, or any option the library refuses.
    """

    def __init__(
        self,
        ikey: str,
        endpoint: Optional[str] = None,
        *,
        resource: Optional["Resource"] = None,
        ext: Optional["Ext"] = None,
        shutdown_timeout: float = _api.DEFAULT_SHUTDOWN_TIMEOUT,
        event_namespace: str = DEFAULT_EVENT_NAMESPACE,
        **options: "Unpack[Options]",
    ) -> None:
        self._default_name = f"{event_namespace}.Log"
        if not isinstance(event_namespace, str) or not _valid_name(self._default_name):
            raise InvalidConfigError(
                f"event_namespace {event_namespace!r} does not make a valid event name with '.Log': "
                "letters, digits, '_' and '.', starting with a letter or digit, at most 96 characters"
            )
        self._shutdown_timeout = shutdown_timeout
        self._ikey = ikey
        self._endpoint = endpoint
        self._options_given: Dict[str, Any] = dict(options)
        #: The ``ext=`` fields: the client's own, a Resource does not override them.
        self._explicit_ext = {extension: dict(fields) for extension, fields in (ext or {}).items()}
        # The whole configuration is checked now, without starting anything.
        validate(ikey, endpoint, ext, **options)
        self._lock = threading.Lock()
        self._shut_down = False
        #: Each Resource field checked, by (extension, field, value): whether the library takes it.
        self._checked: Dict[Tuple[str, str, str], bool] = {}
        #: The accepted fields of the constructor's ``resource``, under every record's.
        self._base_ext: Dict[str, Dict[str, str]] = {}
        #: The client, started with the Resource's fields: at once with ``resource=``, else by
        #: the first export (the first batch brings the provider's Resource).
        self._client: Optional[Client] = None
        self._client_fields: Dict[str, Dict[str, str]] = {}
        #: The last Resource seen (a provider has one).
        self._resource: Any = None
        if resource is not None:
            self._base_ext = self._accepted_fields(resource, {})
            self._client_fields = self._base_ext
            self._client = self._new_client(self._base_ext)
            self._resource = resource
        #: The ``persisted`` counter at the last force_flush().
        self._persisted_seen = 0

    # --- the Resource ------------------------------------------------------------------------

    def _new_client(self, fields: Dict[str, Dict[str, str]]) -> Client:
        """A client whose ``ext`` is the Resource's accepted ``fields`` under ``ext=``."""
        ext = {extension: dict(values) for extension, values in fields.items()}
        for extension, values in self._explicit_ext.items():
            ext.setdefault(extension, {}).update(values)
        return Client(self._ikey, endpoint=self._endpoint, ext=ext or None, **self._options_given)

    def _accepted_fields(self, resource: Any, base: Dict[str, Dict[str, str]]) -> Dict[str, Dict[str, str]]:
        """``base`` with the ext fields of ``resource`` the library takes over it; each refused
        field is dropped with one warning naming it. Fields of ``ext=`` are left out (they win)."""
        accepted = {extension: dict(fields) for extension, fields in base.items()}
        for extension, fields in resource_to_ext(resource).items():
            for field, value in fields.items():
                if field in self._explicit_ext.get(extension, {}):
                    continue
                if self._field_accepted(extension, field, value):
                    accepted.setdefault(extension, {})[field] = value
        return accepted

    def _use_resource(self, resource: Any) -> None:
        """Makes the client's ``ext`` that of ``resource`` (under the constructor's and ``ext=``).

        The fields are the client's configuration, not per-event options, so each record costs
        the library nothing for them. The first Resource starts the client; another one (a
        second provider on the same exporter) starts a new client and closes the previous one.
        Called with ``_lock`` held."""
        self._resource = resource
        fields = self._accepted_fields(resource, self._base_ext)
        if self._client is not None and fields == self._client_fields:
            return
        try:
            client = self._new_client(fields)
        except TelemetryError as e:  # every field passed on its own; not together
            logger.warning("the OpenTelemetry Resource's ext fields are not sent, the library refuses them: %s", e)
            fields = self._base_ext
            client = self._new_client(fields)
        previous, self._client, self._client_fields = self._client, client, fields
        self._persisted_seen = 0
        if previous is not None:
            try:
                # What it cannot deliver within the deadline goes to the cache, which the new
                # client replays.
                previous.close(min(self._shutdown_timeout, 1.0))
            except TelemetryError as e:
                logger.debug("telemetry client of the previous Resource: %s", e)

    def _field_accepted(self, extension: str, field: str, value: str) -> bool:
        key = (extension, field, value)
        if key in self._checked:
            return self._checked[key]
        reason = _field_refusal(self._ikey, extension, field, value)
        self._checked[key] = reason is None
        if reason is not None:
            logger.warning(
                "the OpenTelemetry Resource's ext.%s.%s is not sent, the library refuses it: %s",
                extension,
                field,
                reason,
            )
        return reason is None

    def _options(self, record: Any, data: Dict[str, Any]) -> Optional[bytes]:
        """The per-event options of one record, as JSON (``data`` loses the exception
        attributes): its time, trace context and exception. The Resource's fields are the
        client's (see :meth:`_use_resource`)."""
        ext = []
        dt = _trace_ext(record)
        if dt is not None:
            ext.append('"dt":' + _encode(dt))
        ex = _exception_ext(record, data)
        if ex is not None:
            ext.append('"ex":' + _encode(ex))
        members = []
        time_ms = _time_ms(record)
        if time_ms is not None:
            members.append(f'"time":{time_ms}')
        if ext:
            members.append('"ext":{' + ",".join(ext) + "}")
        if not members:
            return None
        return ("{" + ",".join(members) + "}").encode("utf-8", "surrogatepass")

    # --- the exporter ------------------------------------------------------------------------

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        """Hands each record to the library. FAILURE when any was refused (attributes that are
        not JSON, an event the library refuses: each cause is logged as a WARNING) or dropped by
        a full queue, or when the exporter is shut down."""
        with self._lock:
            if self._shut_down:
                return LogRecordExportResult.FAILURE
            if not batch:
                return LogRecordExportResult.SUCCESS
            # The batch's Resource (one provider, one Resource) decides the client.
            for item in batch:
                resource = getattr(item, "resource", None) or getattr(getattr(item, "log_record", item), "resource", None)
                if resource is not self._resource or self._client is None:
                    try:
                        self._use_resource(resource)
                    except TelemetryError as e:
                        logger.warning("OpenTelemetry export: the telemetry client could not start: %s", e)
                        return LogRecordExportResult.FAILURE
                    break
            assert self._client is not None
            try:
                with self._client._batch() as log:
                    refused = self._log_batch(batch, log)
            except TelemetryError as e:
                logger.warning("OpenTelemetry export: %s", e)
                return LogRecordExportResult.FAILURE
        return LogRecordExportResult.FAILURE if refused else LogRecordExportResult.SUCCESS

    def _log_batch(self, batch: Sequence[Any], log: Any) -> int:
        """Logs each record of ``batch`` through ``log``; returns how many were refused."""
        refused = 0
        encode = _encode
        for item in batch:
            # ReadableLogRecord / LogData wrap the record; older SDKs hand it over bare.
            record = getattr(item, "log_record", item)
            attributes = record.attributes
            data: Dict[str, Any] = dict(attributes) if attributes else {}
            scope = getattr(item, "instrumentation_scope", None)
            name = _event_name(record, data, self._default_name, getattr(scope, "name", None))
            try:
                options = self._options(record, data)
                _severity(record, data)
                payload = encode(data).encode("utf-8", "surrogatepass") if data else None
                status = log(name.encode("utf-8", "surrogatepass"), payload, options)
            except (TypeError, ValueError, RecursionError) as e:
                refused += 1
                logger.warning("OpenTelemetry log record %r not sent: its attributes are not JSON-serialisable: %s", name, e)
                continue
            if status:
                refused += 1
                if status == _native.TEL_ERR_QUEUE_FULL:
                    logger.warning("OpenTelemetry log record %r dropped: the queue is full", name)
                else:
                    logger.warning("OpenTelemetry log record %r not sent: %s", name, _native.last_error())
        return refused

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Waits until every record exported so far is resolved. True only when all of them
        were sent, rejected or dropped for a named reason since the previous call; False when
        the deadline passed with records still pending, when some were only written to the
        cache (the collector could not be reached: a later run sends them), or once shut down."""
        client = self._client
        if self._shut_down:
            return False
        if client is None:  # nothing exported yet
            return True
        try:
            client.flush(timeout_millis / 1000)
        except TelemetryError as e:
            logger.debug("telemetry flush: %s", e)
            return False
        try:
            stats = client.stats()
        except TelemetryError:
            return False
        persisted = int(stats.get("persisted", 0))
        only_persisted = persisted - self._persisted_seen
        self._persisted_seen = persisted
        if only_persisted > 0:
            logger.debug("telemetry flush: %d events were written to the cache, not delivered", only_persisted)
        return only_persisted <= 0

    def stats(self) -> Dict[str, Any]:
        """The counters of the exporter's client (see :meth:`onecollector_tel.Client.stats`);
        ``{}`` before the first batch started it. Raises ``NotInitializedError`` once shut down."""
        client = self._client
        if client is None:
            if self._shut_down:
                raise NotInitializedError("the exporter is shut down")
            return {}
        return client.stats()

    def shutdown(self, timeout_millis: Optional[float] = None) -> None:
        """Closes the client within ``shutdown_timeout`` seconds (or ``timeout_millis``, when
        the processor gives a shorter one). Later exports send nothing and fail."""
        timeout = self._shutdown_timeout
        if timeout_millis is not None:
            timeout = min(timeout, timeout_millis / 1000)
        with self._lock:  # no export is between records, or starts a client of a new Resource
            if self._shut_down:
                return
            self._shut_down = True
            if self._client is None:
                return
            try:
                self._client.close(timeout)
            except TelemetryTimeoutError as e:
                logger.warning("telemetry shutdown: %s", e)
