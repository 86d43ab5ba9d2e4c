"""Messages name the Python calls, and the calls that never block keep the GIL."""

from __future__ import annotations

import ctypes
import re

import pytest

import onecollector_tel as tel
from onecollector_tel import _native
from onecollector_tel._errors import python_names

_C_FUNCTION = re.compile(r"\btel_[a-z_]+\b")


def test_calls_without_a_session_say_which_python_call_starts_one():
    with pytest.raises(tel.NotInitializedError) as caught:
        tel.log("NoSessionEvent")
    message = str(caught.value)
    assert "onecollector_tel.init()" in message, message
    assert not _C_FUNCTION.search(message), message
    with pytest.raises(tel.NotInitializedError) as caught:
        tel.flush()
    assert "onecollector_tel.init()" in str(caught.value)


def test_a_second_init_names_shutdown_and_init(start):
    start()
    with pytest.raises(tel.AlreadyInitializedError) as caught:
        start()
    message = str(caught.value)
    assert "onecollector_tel.shutdown()" in message and "onecollector_tel.init()" in message, message
    assert not _C_FUNCTION.search(message), message


def test_a_flush_deadline_names_flush(start, emulator):
    emulator.default({"fault": "hang"})
    start(http_timeout_ms=60_000)
    tel.log("StuckEvent")
    emulator.wait(requests=1)
    with pytest.raises(tel.TelemetryTimeoutError) as caught:
        tel.flush(timeout=0.1)
    message = str(caught.value)
    assert "flush" in message, message
    assert not _C_FUNCTION.search(message), message


def test_c_names_become_the_python_calls_of_the_module_or_of_a_client():
    assert python_names("call tel_init first") == "call onecollector_tel.init() first"
    assert python_names("tel_shutdown before tel_init") == "onecollector_tel.shutdown() before onecollector_tel.init()"
    assert python_names("tel_flush timed out", client=True) == "Client.flush() timed out"
    assert python_names("tel_shutdown reached its deadline", client=True) == "Client.close() reached its deadline"
    assert python_names("tel_client_close from its own callback") == "Client.close() from its own callback"
    assert python_names("hotel_x and tel_unknown stay") == "hotel_x and tel_unknown stay"


def _keeps_gil(function) -> bool:
    return bool(function._flags_ & ctypes._FUNCFLAG_PYTHONAPI)  # type: ignore[attr-defined]


def test_calls_that_never_block_keep_the_gil_and_calls_that_wait_release_it():
    for name in ("tel_log", "tel_stats_json", "tel_last_error", "tel_version"):
        assert _keeps_gil(getattr(_native.nolock, name)), name
    for name in ("tel_init", "tel_flush", "tel_shutdown", "tel_set_logger"):
        assert not _keeps_gil(getattr(_native.lib, name)), name
    for name in ("tel_log_ex", "tel_client_log", "tel_client_log_ex", "tel_client_stats_json"):
        if _native.has(name):
            assert _keeps_gil(getattr(_native.nolock, name)), name
    for name in ("tel_client_new", "tel_client_flush", "tel_client_close", "tel_purge"):
        if _native.has(name):
            assert not _keeps_gil(getattr(_native.lib, name)), name


def test_the_module_logs_through_the_handle_that_keeps_the_gil(start, emulator, monkeypatch):
    start()
    calls = []
    real = _native.nolock.tel_log

    class Spy:
        def __getattr__(self, name):
            return getattr(_native.nolock, name)

        def tel_log(self, *args):
            calls.append(args[0])
            return real(*args)

    from onecollector_tel import _api

    monkeypatch.setattr(_api, "_nolock", Spy())
    tel.log("SpiedEvent")
    assert calls == [b"SpiedEvent"]
