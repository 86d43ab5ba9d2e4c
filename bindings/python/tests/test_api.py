"""The Python API: configuration, events on the wire, errors, lifetime of a session."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from support import IKEY, TENANT, assert_conserved

import onecollector_tel as tel
from onecollector_tel import _native


def test_version_is_the_library_and_the_package_version():
    assert tel.version().count(".") == 2
    assert tel.__version__ == tel.version()


def test_loads_the_library_bundled_in_the_package_unless_told_otherwise():
    package_dir = Path(tel.__file__).resolve().parent
    if os.environ.get("TEL_LIBRARY"):
        pytest.skip("TEL_LIBRARY points the package at another build")
    assert tel.LIBRARY_PATH == package_dir / _native.library_filename()


@pytest.mark.parametrize(
    "ikey,endpoint,word",
    [
        ("", "https://example.invalid/", "ikey"),
        (IKEY, "", "endpoint is empty"),
        ("", "", "ikey"),
        ("noseparator", "https://example.invalid/", "no '-'"),
        ("-leading-dash", "https://example.invalid/", "tenant token"),
        (IKEY, "http://example.com/", "loopback"),
    ],
)
def test_init_rejects_bad_keys_and_endpoints_with_the_library_message(ikey, endpoint, word, cache_path):
    with pytest.raises(tel.InvalidConfigError) as caught:
        tel.init(ikey, endpoint=endpoint, cache_path=cache_path)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, tel.TelemetryError)
    assert caught.value.status == _native.TEL_ERR_INVALID_CONFIG
    assert word in str(caught.value)
    with pytest.raises(tel.NotInitializedError):
        tel.log("SomeEvent")


def test_every_configuration_key_is_a_keyword_and_unknown_ones_are_named(emulator, cache_path):
    tel.init(
        IKEY,
        endpoint=emulator.endpoint,
        ext={"app": {"ver": "1.2.3"}},
        enabled=True,
        cache_path=cache_path,
        batch_max_events=10,
        batch_max_bytes=100_000,
        event_max_bytes=10_000,
        flush_interval_ms=50,
        queue_max_events=100,
        cache_max_bytes=1_000_000,
        cache_max_age_s=3600,
        http_timeout_ms=2000,
        compression="gzip",
        retry_initial_ms=10,
        retry_max_ms=100,
        retry_max_attempts=2,
    )
    tel.log("ConfiguredEvent")
    tel.flush()
    (request,) = emulator.requests()
    assert request["headers"]["content-encoding"] == "gzip"
    assert emulator.accepted()[0]["ext"]["app"]["ver"] == "1.2.3"
    tel.shutdown()

    with pytest.raises(tel.InvalidConfigError, match="flush_interval"):
        tel.init(IKEY, endpoint=emulator.endpoint, cache_path=cache_path, flush_interval=5)  # type: ignore[call-arg]
    with pytest.raises(tel.InvalidConfigError, match="ext.os.release"):
        tel.init(IKEY, endpoint=emulator.endpoint, cache_path=cache_path, ext={"os": {"release": "11"}})


def test_a_second_init_while_live_raises(start):
    start()
    with pytest.raises(tel.AlreadyInitializedError) as caught:
        start()
    assert isinstance(caught.value, RuntimeError)
    assert "already live" in str(caught.value)


def test_success_sends_ndjson_with_the_key_in_the_header_only(start, emulator):
    start()
    tel.log("WinMLCLIAction", action_name="build", success=True, duration_ms=1234)
    tel.flush()
    (request,) = emulator.requests()
    headers = request["headers"]
    assert headers["content-type"] == "application/x-json-stream; charset=utf-8"
    assert headers["x-apikey"] == IKEY
    assert headers["client-id"] == "NO_AUTH"
    assert request["status"] == 200
    assert request["full_key_in_body"] is False
    assert IKEY not in request["body"]
    (line,) = request["lines"]
    envelope = json.loads(line)
    assert envelope["iKey"] == f"o:{TENANT}"
    assert envelope["name"] == "WinMLCLIAction"
    assert envelope["data"] == {"action_name": "build", "success": True, "duration_ms": 1234}
    stats = tel.stats()
    assert stats["sent"] == 1 and stats["logged"] == 1
    assert_conserved(stats)


def test_properties_take_any_json_values_as_a_mapping_and_as_keywords(start, emulator):
    start()
    nested = {"ops": [{"name": "Conv", "count": 3}, {"name": "Relu", "count": None}], "ratio": 0.5}
    tel.log("NestedEvent", nested, unicode="zoë ✓", override=1)
    tel.log("NestedEvent", {"override": 0}, override=2)
    tel.log("BareEvent")
    tel.flush()
    first, second, bare = emulator.accepted()
    assert first["data"] == dict(nested, unicode="zoë ✓", override=1)
    assert second["data"] == {"override": 2}
    assert bare["data"] == {}


def test_several_events_serialize_as_several_lines_of_one_request(start, emulator):
    start(flush_interval_ms=600_000)  # nothing is sent before the flush
    for name in ("FirstEvent", "SecondEvent", "ThirdEvent"):
        tel.log(name, n=1)
    tel.flush()
    (request,) = emulator.requests()
    assert not request["body"].startswith("[")
    assert len(request["lines"]) == 3
    assert [json.loads(line)["name"] for line in request["lines"]] == ["FirstEvent", "SecondEvent", "ThirdEvent"]


def test_an_empty_flush_sends_nothing(start, emulator):
    start()
    tel.flush()
    tel.shutdown()
    assert emulator.requests() == []
    assert tel.stats()["http_requests"] == 0


def test_shutdown_delivers_then_blocks_further_logging(start, emulator):
    start(flush_interval_ms=600_000)
    tel.log("LastEvent")
    tel.shutdown()
    assert [e["name"] for e in emulator.accepted()] == ["LastEvent"]
    with pytest.raises(tel.NotInitializedError):
        tel.log("TooLateEvent")
    with pytest.raises(tel.NotInitializedError):
        tel.flush()
    tel.shutdown()  # a second shutdown does nothing
    assert len(emulator.requests()) == 1
    stats = tel.stats()  # the last session's figures stay readable
    assert stats["sent"] == 1
    assert_conserved(stats)


def test_a_new_session_may_follow_a_shutdown(start, emulator):
    start()
    tel.shutdown()
    start()
    tel.log("SecondSession")
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["SecondSession"]


def test_the_session_context_manager_shuts_down_on_exit(emulator, cache_path):
    with tel.session(IKEY, endpoint=emulator.endpoint, cache_path=cache_path, flush_interval_ms=600_000):
        tel.log("InsideSession")
    assert [e["name"] for e in emulator.accepted()] == ["InsideSession"]
    with pytest.raises(tel.NotInitializedError):
        tel.log("OutsideSession")

    with pytest.raises(KeyError):
        with tel.session(IKEY, endpoint=emulator.endpoint, cache_path=cache_path, flush_interval_ms=600_000):
            tel.log("BeforeError")
            raise KeyError("the host's own error")
    assert [e["name"] for e in emulator.accepted()] == ["InsideSession", "BeforeError"]
    with pytest.raises(tel.NotInitializedError):
        tel.flush()


@pytest.mark.parametrize(
    "name,properties,error,word",
    [
        ("ab", None, tel.InvalidEventError, "4 to 100"),
        ("bad name!", None, tel.InvalidEventError, "only letters, digits"),
        ("ListEvent", [1, 2], tel.InvalidEventError, "object"),
        ("SetEvent", {"values": {1, 2}}, tel.InvalidEventError, "JSON-serialisable"),
        ("NanEvent", {"x": float("nan")}, tel.InvalidEventError, "JSON-serialisable"),
        ("Bad\udc80Name", None, tel.InvalidArgumentError, "UTF-8"),
    ],
)
def test_refused_events_raise_with_the_reason(start, emulator, name, properties, error, word):
    start()
    with pytest.raises(error, match=word) as caught:
        tel.log(name, properties)
    assert isinstance(caught.value, ValueError)
    tel.flush()
    assert emulator.requests() == []
    assert tel.stats()["logged"] == 0


def test_an_event_above_event_max_bytes_is_refused(start):
    start(event_max_bytes=1024)
    with pytest.raises(tel.InvalidEventError, match="event_max_bytes"):
        tel.log("HugeEvent", blob="x" * 2000)


def test_a_full_queue_never_raises(start, emulator):
    start(queue_max_events=2, flush_interval_ms=600_000)
    for _ in range(5):
        tel.log("QueuedEvent")
    stats = tel.stats()
    assert stats["logged"] == 2
    assert stats["dropped_queue_full"] == 3
    tel.shutdown()
    assert len(emulator.accepted()) == 2
    assert_conserved(tel.stats())


def test_flush_delivers_a_queue_filled_as_the_session_starts(start, emulator):
    # The queue is full before the library's worker has looked at the cache file: the events
    # must still go out at the flush, not wait for the shutdown.
    start(queue_max_events=2, flush_interval_ms=600_000)
    tel.log("QueuedEvent")
    tel.log("QueuedEvent")
    tel.flush()
    assert len(emulator.accepted()) == 2


@pytest.mark.parametrize("how", ["enabled=False", "TEL_DISABLE", "DO_NOT_TRACK"])
def test_opt_out_never_raises_and_sends_nothing(start, emulator, monkeypatch, how):
    if how == "TEL_DISABLE":
        monkeypatch.setenv("TEL_DISABLE", "1")
    if how == "DO_NOT_TRACK":
        monkeypatch.setenv("DO_NOT_TRACK", "1")
    start(**({"enabled": False} if how == "enabled=False" else {}))
    tel.log("OptedOutEvent", x=1)
    tel.flush()
    assert tel.stats()["enabled"] is False
    tel.shutdown()
    assert emulator.requests() == []


def test_cache_path_none_disables_persistence(start, emulator, tmp_path):
    emulator.default({"status": 503})
    start(cache_path=None, retry_max_attempts=1)
    tel.log("NeverPersisted")
    emulator.wait(requests=1)
    try:
        tel.shutdown(timeout=0.3)
    except tel.TelemetryTimeoutError:
        pass  # whether the deadline was reached depends on where the retry loop was
    stats = tel.stats()
    assert stats["persisted"] == 0 and stats["dropped_shutdown"] == 1
    assert_conserved(stats)
    assert list(tmp_path.iterdir()) == []


def test_stats_are_a_dict_of_the_documented_counters(start):
    start()
    stats = tel.stats()
    for key in (
        "enabled", "logged", "sent", "rejected", "dropped_queue_full", "dropped_killed",
        "dropped_shutdown", "replayed", "persisted", "cache_evicted", "pending", "retries",
        "http_requests", "http_failures", "killed_until_ms",
    ):  # fmt: skip
        assert key in stats
    assert stats["enabled"] is True


def test_errors_form_one_hierarchy_with_one_class_per_status():
    classes = {
        _native.TEL_ERR_INVALID_ARGUMENT: tel.InvalidArgumentError,
        _native.TEL_ERR_INVALID_CONFIG: tel.InvalidConfigError,
        _native.TEL_ERR_INVALID_EVENT: tel.InvalidEventError,
        _native.TEL_ERR_NOT_INITIALIZED: tel.NotInitializedError,
        _native.TEL_ERR_ALREADY_INITIALIZED: tel.AlreadyInitializedError,
        _native.TEL_ERR_QUEUE_FULL: tel.QueueFullError,
        _native.TEL_ERR_TIMEOUT: tel.TelemetryTimeoutError,
        _native.TEL_ERR_INTERNAL: tel.InternalError,
    }
    for status, cls in classes.items():
        assert issubclass(cls, tel.TelemetryError)
        assert cls.status == status
    assert issubclass(tel.TelemetryTimeoutError, TimeoutError)
    # Not an error: the event was queued, only its durability is missing.
    assert issubclass(tel.NotDurableWarning, UserWarning)
    assert tel.NotDurableWarning.status == _native.TEL_ERR_NOT_DURABLE


def test_a_full_queue_is_warned_of_once_then_at_most_once_a_minute_with_the_count(start, emulator, caplog, monkeypatch):
    from onecollector_tel import _logging

    now = [1000.0]
    monkeypatch.setattr(_logging, "_clock", lambda: now[0])
    caplog.set_level(logging.WARNING, logger="onecollector_tel")
    start(queue_max_events=1, flush_interval_ms=600_000)

    def warnings():
        return [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]

    tel.log("KeptEvent")
    tel.log("DroppedOne")
    assert len(warnings()) == 1 and "1 event dropped so far" in warnings()[0], warnings()
    for _ in range(3):
        tel.log("DroppedMore")
    assert len(warnings()) == 1, "not again within the minute"
    now[0] += 61
    tel.log("DroppedLater")
    assert len(warnings()) == 2 and "4 events dropped in the last minute" in warnings()[1], warnings()
    assert tel.stats()["dropped_queue_full"] == 5
    # A client warns for itself.
    with tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=None, queue_max_events=1, flush_interval_ms=600_000) as client:
        client.log("ClientKept")
        client.log("ClientDropped")
    assert len(warnings()) == 3 and warnings()[2].startswith("telemetry client"), warnings()


def test_the_old_exporters_cache_keyword_is_a_type_error_in_init_and_client_too(cache_path):
    for start in (tel.init, tel.Client):
        with pytest.raises(TypeError, match=r"cache=.*MIGRATION\.md"):
            start(IKEY, endpoint="http://127.0.0.1:9/OneCollector/1.0/", cache=str(cache_path))
    with pytest.raises(tel.NotInitializedError):
        tel.log("NoSession")
