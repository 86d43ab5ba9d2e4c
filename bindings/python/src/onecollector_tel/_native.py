"""Loads the shared library and declares the C ABI of ``include/tel.h`` for ctypes.

The library is the one bundled inside this package (``libtel.so``, ``libtel.dylib`` or
``tel.dll`` beside this file), unless the environment variable ``TEL_LIBRARY`` names another
build of it (a file, or a folder holding it). Nothing else is searched: a stray system copy
must never be picked up by accident.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import CFUNCTYPE, c_char_p, c_int32, c_size_t, c_uint32, c_void_p
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


def _declare(lib: ctypes.CDLL) -> None:
    lib.tel_init.argtypes = [c_char_p]
    lib.tel_init.restype = c_int32
    lib.tel_log.argtypes = [c_char_p, c_char_p]
    lib.tel_log.restype = c_int32
    lib.tel_flush.argtypes = [c_uint32]
    lib.tel_flush.restype = c_int32
    lib.tel_shutdown.argtypes = [c_uint32]
    lib.tel_shutdown.restype = c_int32
    lib.tel_stats_json.argtypes = [c_char_p, c_size_t]
    lib.tel_stats_json.restype = c_size_t
    lib.tel_last_error.argtypes = [c_char_p, c_size_t]
    lib.tel_last_error.restype = c_size_t
    lib.tel_version.argtypes = []
    lib.tel_version.restype = c_char_p
    lib.tel_set_logger.argtypes = [LOG_FN, c_int32, c_void_p]
    lib.tel_set_logger.restype = c_int32


#: Where the loaded library lives.
LIBRARY_PATH: Path = _locate()

#: The loaded library. ``CDLL`` releases the GIL during every call, so a call that blocks
#: (``tel_flush``, ``tel_shutdown``) never holds up other Python threads, and the library's
#: worker thread can take the GIL to run the logger callback meanwhile.
lib = ctypes.CDLL(str(LIBRARY_PATH))
_declare(lib)


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
    return _read_snprintf(lib.tel_last_error)


def stats_json() -> str:
    """The session's counters as JSON text."""
    return _read_snprintf(lib.tel_stats_json)


def timeout_ms(seconds: float | None) -> int:
    """Seconds as the ABI's ``uint32_t`` milliseconds, clamped to what it holds.

    ``None`` is the longest wait the ABI can express (about 49 days).
    """
    if seconds is None or seconds >= MAX_TIMEOUT_MS / 1000:
        return MAX_TIMEOUT_MS
    if seconds != seconds:  # NaN
        raise ValueError("timeout must be a number of seconds, not NaN")
    return max(int(seconds * 1000), 0)
