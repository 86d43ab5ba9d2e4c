"""Loads the shared library and declares the C ABI of ``include/tel.h`` for ctypes.

Two handles on the one library decide who holds the GIL during a call:

* :data:`lib` (``ctypes.CDLL``) releases it, for the calls that wait: ``tel_init``,
  ``tel_flush``, ``tel_shutdown``, ``tel_client_new``, ``tel_client_flush``,
  ``tel_client_close``, ``tel_purge``, the callback setters, the consent setters (which write
  the consent record, and a denial purges the cache), pause and resume, and a ``critical``
  event (whose call writes the cache file before it returns). Other Python threads run meanwhile, and the
  library's threads can take the GIL to run a callback.
* :data:`nolock` (``ctypes.PyDLL``) keeps it, for the calls that never block: ``tel_log``,
  ``tel_log_ex`` and their client forms, the stats, the last error, the version, the consent
  state and the common properties. They take
  a few microseconds; releasing the GIL around each one and taking it back cost more than the
  call itself, and beside a busy Python thread taking it back can wait a whole switch interval
  (5 ms) per call.

The library is the one bundled inside this package (``libtel.so``, ``libtel.dylib`` or
``tel.dll`` beside this file), unless the environment variable ``TEL_LIBRARY`` names another
build of it (a file, or a folder holding it). Nothing else is searched: a stray system copy
must never be picked up by accident.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int32, c_size_t, c_uint32, c_void_p
from pathlib import Path

# Status codes (abi.md, "Status codes").
TEL_OK = 0
TEL_ERR_INVALID_ARGUMENT = 1
TEL_ERR_INVALID_CONFIG = 2
TEL_ERR_INVALID_EVENT = 3
TEL_ERR_NOT_INITIALIZED = 4
TEL_ERR_ALREADY_INITIALIZED = 5
TEL_ERR_QUEUE_FULL = 6
TEL_ERR_TIMEOUT = 7
TEL_ERR_INTERNAL = 8
TEL_ERR_NOT_DURABLE = 9  # 0.2.0: a critical event queued but not written to the cache file

# Consent states of tel_set_consent / tel_consent (ABI 1.2); tel_consent gives -1 without a session.
TEL_CONSENT_UNKNOWN = 0
TEL_CONSENT_GRANTED = 1
TEL_CONSENT_DENIED = 2

# Log levels of tel_set_logger.
TEL_LOG_OFF = 0
TEL_LOG_ERROR = 1
TEL_LOG_WARN = 2
TEL_LOG_INFO = 3
TEL_LOG_DEBUG = 4
TEL_LOG_TRACE = 5

#: The largest timeout the ABI can express (``uint32_t`` milliseconds).
MAX_TIMEOUT_MS = 2**32 - 1

#: ``typedef void (*tel_log_fn)(int32_t level, const char *message, void *user_data);``
LOG_FN = CFUNCTYPE(None, c_int32, c_char_p, c_void_p)
#: ``typedef void (*tel_delivery_fn)(const char *report_json, void *user_data);`` (ABI 1.1)
DELIVERY_FN = CFUNCTYPE(None, c_char_p, c_void_p)


def library_filename() -> str:
    """The library's file name on this platform."""
    if sys.platform == "win32":
        return "tel.dll"
    if sys.platform == "darwin":
        return "libtel.dylib"
    return "libtel.so"


def _locate() -> Path:
    override = os.environ.get("TEL_LIBRARY")
    if override:
        path = Path(override)
        if path.is_dir():
            path = path / library_filename()
        if not path.is_file():
            raise ImportError(
                f"TEL_LIBRARY is set to {override!r}, but {str(path)!r} is not a file; "
                f"point it at a build of {library_filename()} or unset it to use the bundled one"
            )
        return path.resolve()
    bundled = Path(__file__).resolve().parent / library_filename()
    if not bundled.is_file():
        raise ImportError(
            f"the bundled {library_filename()} is missing from {bundled.parent}: install the package "
            "with pip (which compiles it), or set TEL_LIBRARY to a build of the library"
        )
    return bundled


# name -> (argument types, result type), for every function of the ABI (tests/test_header.py
# checks each against include/tel.h). The 1.1 and 1.2 functions may be missing from an older
# build of the library: see `has`.
_SIGNATURES = {
    "tel_init": ([c_char_p], c_int32),
    "tel_log": ([c_char_p, c_char_p], c_int32),
    "tel_flush": ([c_uint32], c_int32),
    "tel_shutdown": ([c_uint32], c_int32),
    "tel_stats_json": ([c_char_p, c_size_t], c_size_t),
    "tel_last_error": ([c_char_p, c_size_t], c_size_t),
    "tel_version": ([], c_char_p),
    "tel_set_logger": ([LOG_FN, c_int32, c_void_p], c_int32),
    # ABI 1.1
    "tel_client_new": ([c_char_p, POINTER(c_void_p)], c_int32),
    "tel_client_log": ([c_void_p, c_char_p, c_char_p], c_int32),
    "tel_client_log_ex": ([c_void_p, c_char_p, c_char_p, c_char_p], c_int32),
    "tel_client_flush": ([c_void_p, c_uint32], c_int32),
    "tel_client_stats_json": ([c_void_p, c_char_p, c_size_t], c_size_t),
    "tel_client_close": ([c_void_p, c_uint32], c_int32),
    "tel_log_ex": ([c_char_p, c_char_p, c_char_p], c_int32),
    "tel_set_delivery_callback": ([DELIVERY_FN, c_void_p], c_int32),
    "tel_client_set_delivery_callback": ([c_void_p, DELIVERY_FN, c_void_p], c_int32),
    "tel_purge": ([c_char_p], c_int32),
    # ABI 1.2
    "tel_set_consent": ([c_int32], c_int32),
    "tel_consent": ([], c_int32),
    "tel_client_set_consent": ([c_void_p, c_int32], c_int32),
    "tel_client_consent": ([c_void_p], c_int32),
    "tel_set_property": ([c_char_p, c_char_p], c_int32),
    "tel_client_set_property": ([c_void_p, c_char_p, c_char_p], c_int32),
    "tel_pause": ([], c_int32),
    "tel_resume": ([], c_int32),
    "tel_client_pause": ([c_void_p], c_int32),
    "tel_client_resume": ([c_void_p], c_int32),
}

#: The calls that never block, made through :data:`nolock` with the GIL held.
NON_BLOCKING = frozenset(
    {
        "tel_log",
        "tel_log_ex",
        "tel_client_log",
        "tel_client_log_ex",
        "tel_stats_json",
        "tel_client_stats_json",
        "tel_last_error",
        "tel_version",
        "tel_consent",
        "tel_client_consent",
        "tel_set_property",
        "tel_client_set_property",
    }
)


def _declare(handle: ctypes.CDLL) -> None:
    for name, (argtypes, restype) in _SIGNATURES.items():
        try:
            function = getattr(handle, name)
        except AttributeError:  # a library older than ABI 1.1 or 1.2
            continue
        function.argtypes = argtypes
        function.restype = restype


#: Where the loaded library lives.
LIBRARY_PATH: Path = _locate()

#: The library, called without the GIL (``CDLL``): for the calls that wait.
lib = ctypes.CDLL(str(LIBRARY_PATH))
_declare(lib)

#: The same library, called with the GIL held (``PyDLL``): for the calls that never block
#: (:data:`NON_BLOCKING`).
nolock = ctypes.PyDLL(str(LIBRARY_PATH))
_declare(nolock)


def has(name: str) -> bool:
    """Whether the loaded library exports ``name`` (the functions of ABI 1.1 are missing from
    libraries older than 0.2.0, those of ABI 1.2 from libraries older than 0.3.0)."""
    return hasattr(lib, name)


def _read_snprintf(fill) -> str:  # type: ignore[no-untyped-def]
    """Reads a text written by an ``snprintf``-style function of the ABI."""
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        needed = fill(buf, size)
        if needed < size:
            return buf.value.decode("utf-8", "replace")
        size = needed + 1


def last_error() -> str:
    """The message of the most recent non-OK status returned on this thread."""
    return _read_snprintf(nolock.tel_last_error)


def stats_json() -> str:
    """The session's counters as JSON text."""
    return _read_snprintf(nolock.tel_stats_json)


def timeout_ms(seconds: float | None) -> int:
    """Seconds as the ABI's ``uint32_t`` milliseconds, clamped to what it holds.

    ``None`` is the longest wait the ABI can express (about 49 days).
    """
    if seconds is None or seconds >= MAX_TIMEOUT_MS / 1000:
        return MAX_TIMEOUT_MS
    if seconds != seconds:  # NaN
        raise ValueError("timeout must be a number of seconds, not NaN")
    return max(int(seconds * 1000), 0)
