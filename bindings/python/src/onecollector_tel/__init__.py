"""Send Common Schema 4.0 events to Microsoft's OneCollector through the onecollector-tel library.

    import onecollector_tel as tel

    tel.init("<tenant_token>-<rest of the key>", ext={"app": {"ver": "1.2.0"}})
    tel.log("MyToolAction", action_name="build", success=True, duration_ms=1234)
    tel.shutdown()

One default session serves the whole process, and ``Client`` objects are independent ones
(each with its own key, endpoint, queue and cache file). The library batches, compresses, retries, honours the
collector's kill directives and keeps what it could not deliver in a cache file for the next
run; this package is a thin ctypes binding over its C ABI. Its log lines reach the standard
``logging`` module under the logger ``onecollector_tel``. See ``onecollector_tel.otel`` for an
OpenTelemetry log exporter built on it.
"""

from __future__ import annotations

from ._api import (
    ATEXIT_SHUTDOWN_TIMEOUT,
    DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Consent,
    EventTime,
    Ext,
    Options,
    Priority,
    flush,
    consent,
    init,
    log,
    log_event,
    pause,
    purge,
    resume,
    session,
    set_consent,
    set_property,
    shutdown,
    stats,
    version,
)
from ._client import Client, DeliveryReport
from ._errors import (
    AlreadyInitializedError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidEventError,
    NotDurableWarning,
    NotInitializedError,
    QueueFullError,
    TelemetryError,
    TelemetryTimeoutError,
)
from ._logging import LOGGER_NAME
from ._native import LIBRARY_PATH


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as _dist_version

        return _dist_version("onecollector-tel")
    except (ImportError, PackageNotFoundError):
        # Used from a source checkout without being installed: the library's own version.
        return version()


#: The package's version; the build takes it from the crate, so it equals :func:`version`
#: unless ``TEL_LIBRARY`` points at another build.
__version__ = _package_version()

__all__ = [
    "ATEXIT_SHUTDOWN_TIMEOUT",
    "DEFAULT_FLUSH_TIMEOUT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "LIBRARY_PATH",
    "LOGGER_NAME",
    "AlreadyInitializedError",
    "Client",
    "Consent",
    "DeliveryReport",
    "EventTime",
    "Ext",
    "InternalError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidEventError",
    "NotDurableWarning",
    "NotInitializedError",
    "Options",
    "Priority",
    "QueueFullError",
    "TelemetryError",
    "TelemetryTimeoutError",
    "__version__",
    "consent",
    "flush",
    "init",
    "log",
    "log_event",
    "pause",
    "purge",
    "resume",
    "session",
    "set_consent",
    "set_property",
    "shutdown",
    "stats",
    "version",
]
