"""An OpenTelemetry log exporter that sends through the onecollector-tel library.

It replaces a hand-written OneCollector exporter with a one-line change of import::

    from onecollector_tel.otel import OneCollectorLogExporter

    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OneCollectorLogExporter(ikey=ikey, endpoint=endpoint)))

Each log record becomes one event: its body is the event name (or, with no string body, its
``event_name``), its attributes are the event's ``data``. The Resource's attributes fill the
session's documented Common Schema 4.0 ``ext`` fields, by the table of :func:`resource_to_ext`;
any other Resource attribute is ignored, never sent as an undocumented field (those make the
collector refuse the whole batch). The library stamps each event when ``export`` hands it over,
so the envelope's time is the export's, at most the processor's schedule delay after the
record's; severity, trace context and instrumentation scope are not sent.

``export`` only enqueues: delivery, batching, retries, kill windows and the cache are the
library's, and happen in its own thread. ``force_flush`` waits for delivery. ``shutdown`` ends
the session (when this exporter started it) within ``shutdown_timeout`` seconds.

Lifetime: the constructor starts the process-wide session, so it validates the key, the
endpoint and the options at once (``InvalidConfigError``, a ``ValueError``). The Resource,
which OpenTelemetry hands over with the records only, is applied before the first event of the
first batch: the session is started again with the ``ext`` fields it maps to. Pass
``resource=`` to the constructor to start with them at once. If a session is already live when
the exporter is made (``onecollector_tel.init`` was called), the exporter sends through it and
leaves its configuration and its end to whoever started it.

Import this module before the ``LoggerProvider`` is made (the one-line swap does): at
interpreter exit the provider's own exit hook then flushes its last records through this
exporter before the package's exit hook ends the session.
"""

from __future__ import annotations

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

from . import _api
from ._errors import AlreadyInitializedError, TelemetryError, TelemetryTimeoutError
from ._logging import logger

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from typing_extensions import Unpack

    from ._api import Ext, Options

__all__ = ["RESOURCE_TO_EXT", "OneCollectorLogExporter", "resource_to_ext"]

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


def _merged_config(base: Dict[str, Any], resource: Optional["Resource"]) -> Dict[str, Any]:
    """``base`` with the Resource's ``ext`` fields added; fields given explicitly win."""
    ext = resource_to_ext(resource)
    explicit = base.get("ext")
    if isinstance(explicit, Mapping):
        for extension, fields in explicit.items():
            if isinstance(fields, Mapping):
                ext.setdefault(extension, {}).update(fields)
    config = dict(base)
    if ext:
        config["ext"] = ext
    return config


def _event_name(record: Any) -> Optional[str]:
    body = getattr(record, "body", None)
    if isinstance(body, str):
        return body
    event_name = getattr(record, "event_name", None)
    if event_name:
        return str(event_name)
    return None if body is None else str(body)


class OneCollectorLogExporter(LogRecordExporter):
    """An OpenTelemetry ``LogRecordExporter`` whose records go through onecollector-tel.

    ``ikey`` is the full instrumentation key; ``endpoint`` None means the library's default
    collector. ``resource``, ``ext`` and the other keywords are those of
    :func:`onecollector_tel.init` (``ext`` fields win over the Resource's).
    ``shutdown_timeout`` bounds :meth:`shutdown`, in seconds. Raises ``InvalidConfigError``
    (a ``ValueError``) for an empty or malformed key, an empty endpoint, or any option the
    library refuses.
    """

    def __init__(
        self,
        ikey: str,
        endpoint: Optional[str] = None,
        *,
        resource: Optional["Resource"] = None,
        ext: Optional["Ext"] = None,
        shutdown_timeout: float = _api.DEFAULT_SHUTDOWN_TIMEOUT,
        **options: "Unpack[Options]",
    ) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._shut_down = False
        self._base_config = _api._config(ikey, endpoint, ext, options)
        self._resource_applied = resource is not None
        config = _merged_config(self._base_config, resource) if resource is not None else self._base_config
        try:
            _api._start(config, owner=self)
            self._owns_session = True
        except AlreadyInitializedError:
            self._owns_session = False
            logger.info(
                "a telemetry session is already live in this process: the OpenTelemetry exporter "
                "sends through it and leaves its configuration and its end to its owner"
            )

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        """Hands each record to the library; returns FAILURE if any was refused (an invalid
        name, say: the library's reason is logged at debug level)."""
        if self._shut_down or not batch:
            return LogRecordExportResult.SUCCESS
        if not self._resource_applied:
            self._resource_applied = True
            try:
                self._apply_resource(getattr(batch[0], "resource", None))
            except TelemetryError as e:
                logger.warning("the OpenTelemetry Resource could not be applied to the telemetry session: %s", e)
        refused = 0
        for item in batch:
            # ReadableLogRecord / LogData wrap the record; older SDKs hand it over bare.
            record = getattr(item, "log_record", item)
            name = _event_name(record)
            if name is None:
                refused += 1
                logger.debug("an OpenTelemetry log record without a body was not sent")
                continue
            attributes = getattr(record, "attributes", None)
            try:
                _api.log(name, dict(attributes) if attributes else None)
            except TelemetryError as e:
                refused += 1
                logger.debug("OpenTelemetry log record %r not sent: %s", name, e)
        return LogRecordExportResult.FAILURE if refused else LogRecordExportResult.SUCCESS

    def _apply_resource(self, resource: Optional["Resource"]) -> None:
        if not resource_to_ext(resource):
            return
        if not self._owns_session:
            logger.debug("the OpenTelemetry Resource is not applied to a session this exporter did not start")
            return
        refused = _api._restart(self, _merged_config(self._base_config, resource), self._shutdown_timeout)
        if refused is not None:
            logger.warning(
                "the OpenTelemetry Resource could not be applied to the telemetry session (%s): "
                "events are sent with the library's default ext fields",
                refused,
            )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Waits until every record exported so far is delivered (or resolved otherwise)."""
        if self._shut_down:
            return False
        try:
            _api.flush(timeout_millis / 1000)
            return True
        except TelemetryError as e:
            logger.debug("telemetry flush: %s", e)
            return False

    def shutdown(self, timeout_millis: Optional[float] = None) -> None:
        """Ends the session if this exporter started it, within ``shutdown_timeout`` seconds
        (or ``timeout_millis``, when the processor gives a shorter one). Later exports send
        nothing."""
        if self._shut_down:
            return
        self._shut_down = True
        if not self._owns_session:
            return
        timeout = self._shutdown_timeout
        if timeout_millis is not None:
            timeout = min(timeout, timeout_millis / 1000)
        try:
            _api._stop(self, timeout)
        except TelemetryTimeoutError as e:
            logger.warning("telemetry shutdown: %s", e)
