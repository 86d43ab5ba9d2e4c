"""What happens to events when the collector fails: connection errors, timeouts, 4xx, 5xx,
and the debug line that tells why."""

from __future__ import annotations

import logging
import socket

import pytest
from support import assert_conserved

import onecollector_tel as tel


def _closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_are_retried_then_cached_for_the_next_session(start, emulator, cache_path):
    start(endpoint=f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/", retry_max_attempts=2)
    tel.log("OfflineEvent", attempt=1)
    tel.flush()
    stats = tel.stats()
    assert stats["http_failures"] == 2 and stats["retries"] == 1
    assert stats["sent"] == 0 and stats["persisted"] == 1
    assert_conserved(stats)
    tel.shutdown()

    start()  # same cache file, a collector that answers
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["OfflineEvent"]
    stats = tel.stats()
    assert stats["replayed"] == 1 and stats["sent"] == 1
    assert_conserved(stats)


def test_a_request_that_times_out_is_retried(start, emulator):
    emulator.script({"fault": "hang"})
    start(http_timeout_ms=500)
    tel.log("SlowEvent")
    tel.flush(timeout=30)
    first, second = emulator.requests()
    assert first["fault"] == "hang"
    assert second["status"] == 200
    assert [e["name"] for e in emulator.accepted()] == ["SlowEvent"]
    stats = tel.stats()
    assert stats["http_failures"] == 1 and stats["sent"] == 1
    assert_conserved(stats)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_statuses_are_retried_until_accepted(start, emulator, status):
    emulator.script({"status": status, "times": 2})
    start()
    tel.log("RetriedEvent")
    tel.flush()
    assert [r["status"] for r in emulator.requests()] == [status, status, 200]
    stats = tel.stats()
    assert stats["retries"] == 2 and stats["sent"] == 1
    assert_conserved(stats)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 415])
def test_other_4xx_are_rejected_not_retried_not_cached(start, emulator, status):
    emulator.script({"status": status, "headers": {"Collector-Error": "Refused by the test"}})
    start()
    tel.log("RejectedEvent")
    tel.flush()
    assert len(emulator.requests()) == 1
    stats = tel.stats()
    assert stats["rejected"] == 1 and stats["retries"] == 0 and stats["persisted"] == 0
    assert_conserved(stats)


def test_a_2xx_naming_refused_events_counts_them_rejected(start, emulator):
    emulator.script({"status": 200, "body": '{"acc":1,"rej":1,"efi":{"InvalidDeviceLocalId":[1]}}'})
    start(flush_interval_ms=600_000)
    tel.log("KeptEvent")
    tel.log("RefusedEvent")
    tel.flush()
    stats = tel.stats()
    assert stats["sent"] == 1 and stats["rejected"] == 1
    assert_conserved(stats)


def test_the_debug_line_carries_status_collector_error_and_body(start, emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="onecollector_tel")
    emulator.script(
        {
            "status": 401,
            "headers": {"Collector-Error": "Invalid Tenant Token."},
            "body": '{"acc":0,"rej":1,"efi":{"InvalidTenantToken":[0]}}',
        }
    )
    start()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    lines = [r for r in caplog.records if r.name == "onecollector_tel" and "HTTP 401" in r.getMessage()]
    debug = [r for r in lines if r.levelno == logging.DEBUG]
    assert debug, [r.getMessage() for r in caplog.records]
    message = debug[0].getMessage()
    assert "Invalid Tenant Token." in message
    assert "InvalidTenantToken" in message
    # The rejection decision is an info line of its own.
    assert any(r.levelno == logging.INFO and "rejected" in r.getMessage() for r in lines)


def test_the_debug_line_caps_the_body_at_200_bytes(start, emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="onecollector_tel")
    emulator.script({"status": 500, "body": "x" * 10_000})
    start(retry_max_attempts=1)
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    message = next(r.getMessage() for r in caplog.records if "HTTP 500" in r.getMessage())
    assert "x" * 200 in message
    assert "x" * 201 not in message


def test_the_full_key_never_appears_in_a_log_line(start, emulator, caplog):
    from support import IKEY

    caplog.set_level(logging.DEBUG, logger="onecollector_tel")
    emulator.script({"status": 401, "headers": {"Collector-Error": "Invalid Tenant Token."}})
    start()
    tel.log("SomeEvent")
    tel.flush()
    assert caplog.records
    assert not any(IKEY in r.getMessage() for r in caplog.records)


def test_flush_and_shutdown_keep_their_deadline_when_the_collector_hangs(start, emulator):
    emulator.default({"fault": "hang"})
    start(http_timeout_ms=60_000)
    tel.log("StuckEvent")
    emulator.wait(requests=1)
    with pytest.raises(tel.TelemetryTimeoutError) as caught:
        tel.flush(timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    with pytest.raises(tel.TelemetryTimeoutError):
        tel.shutdown(timeout=0.2)
    stats = tel.stats()
    assert stats["persisted"] == 1
    assert_conserved(stats)
