"""Independent clients, per-event options, delivery reports and purge (ABI 1.1)."""

from __future__ import annotations

import datetime
import logging
import socket
import threading

import pytest
from support import FAST, IKEY, TENANT, Emulator, assert_conserved

import onecollector_tel as tel
from onecollector_tel import _native

pytestmark = pytest.mark.skipif(
    not _native.has("tel_client_new"), reason="the library predates ABI 1.1 (tel_client_new)"
)

#: A second key, of another tenant.
OTHER_IKEY = "def-0123456789abcdef-0123456789abcdef"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_client_sends_under_its_own_key_beside_the_default_session(start, make_client, emulator):
    start()
    client = make_client(OTHER_IKEY)
    tel.log("DefaultSessionEvent")
    client.log("ClientEvent", n=1)
    tel.flush()
    client.flush()
    by_key = {}
    for request in emulator.requests():
        by_key.setdefault(request["headers"]["x-apikey"], []).extend(request["lines"])
    assert set(by_key) == {IKEY, OTHER_IKEY}
    envelopes = {e["name"]: e for e in emulator.accepted()}
    assert envelopes["DefaultSessionEvent"]["iKey"] == f"o:{TENANT}"
    assert envelopes["ClientEvent"]["iKey"] == "o:def"
    assert envelopes["ClientEvent"]["data"] == {"n": 1}
    stats = client.stats()
    assert stats["sent"] == 1 and stats["logged"] == 1
    assert_conserved(stats)
    assert tel.stats()["sent"] == 1


def test_two_clients_reach_their_own_endpoints(make_client, emulator):
    other = Emulator()
    try:
        first = make_client()
        second = make_client(OTHER_IKEY, endpoint=other.endpoint)
        first.log("ToTheFirst")
        second.log("ToTheSecond")
        first.flush()
        second.flush()
        assert [e["name"] for e in emulator.accepted()] == ["ToTheFirst"]
        assert [e["name"] for e in other.accepted()] == ["ToTheSecond"]
        assert other.requests()[0]["headers"]["x-apikey"] == OTHER_IKEY
    finally:
        other.close()


def test_a_client_needs_no_default_session(make_client, emulator):
    client = make_client()
    client.log("WithoutSession")
    client.flush()
    assert [e["name"] for e in emulator.accepted()] == ["WithoutSession"]
    with pytest.raises(tel.NotInitializedError):
        tel.log("TheDefaultSessionIsNotLive")


def test_a_bad_configuration_raises_naming_the_key(tmp_path):
    with pytest.raises(tel.InvalidConfigError, match="flush_interval"):
        tel.Client(IKEY, cache_path=tmp_path / "c.cache", flush_interval=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        tel.Client("noseparator", endpoint="https://example.invalid/OneCollector/1.0/")


def test_a_closed_client_raises_and_a_second_close_does_nothing(make_client, emulator):
    client = make_client(flush_interval_ms=600_000)
    client.log("BeforeClose")
    client.close()
    assert client.closed
    assert [e["name"] for e in emulator.accepted()] == ["BeforeClose"]
    for call in (lambda: client.log("AfterClose"), client.flush, client.stats, lambda: client.log_event("AfterClose")):
        with pytest.raises(tel.NotInitializedError) as caught:
            call()
        assert "closed" in str(caught.value)
    client.close()


def test_the_context_manager_closes_the_client(emulator, tmp_path):
    with tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", flush_interval_ms=600_000) as client:
        client.log("InsideWith")
    assert client.closed
    assert [e["name"] for e in emulator.accepted()] == ["InsideWith"]


def test_log_event_takes_aware_datetimes_and_epoch_seconds(make_client, emulator):
    client = make_client()
    client.log_event("AtADatetime", time=datetime.datetime(2024, 4, 9, 16, 0, tzinfo=datetime.timezone.utc))
    client.log_event(
        "AtAnOffset", time=datetime.datetime(2024, 4, 9, 18, 0, 0, 250_000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    )
    client.log_event("AtEpochSeconds", {"k": "v"}, time=1712678400.125)
    client.log_event("AtIntegerSeconds", time=1712678400)
    client.flush()
    times = {e["name"]: e["time"] for e in emulator.accepted()}
    assert times == {
        "AtADatetime": "2024-04-09T16:00:00.000Z",
        "AtAnOffset": "2024-04-09T16:00:00.250Z",
        "AtEpochSeconds": "2024-04-09T16:00:00.125Z",
        "AtIntegerSeconds": "2024-04-09T16:00:00.000Z",
    }


def test_log_event_refuses_naive_datetimes_and_other_types(make_client):
    client = make_client()
    with pytest.raises(tel.InvalidEventError, match="aware"):
        client.log_event("NaiveTime", time=datetime.datetime(2024, 4, 9, 16, 0))
    with pytest.raises(TypeError):
        client.log_event("StringTime", time="2024-04-09")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.log_event("BoolTime", time=True)
    with pytest.raises(tel.InvalidEventError):
        client.log_event("NanTime", time=float("nan"))
    assert client.stats()["logged"] == 0


def test_log_event_sends_per_event_ext_dt_and_ex(make_client, emulator_takes_dt_ex):
    emulator = emulator_takes_dt_ex
    client = make_client(ext={"app": {"ver": "1.0.0"}})
    dt = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "traceFlags": 1}
    ex = {"type": "ValueError", "msg": "boom", "stack": "Traceback ...\nValueError: boom"}
    client.log_event("WithExt", {"a": 1}, ext={"dt": dt, "ex": ex, "app": {"sesId": "s-1"}})
    client.log_event("WithoutExt")
    client.flush()
    with_ext, without = emulator.accepted()
    assert with_ext["ext"]["dt"] == dt
    assert with_ext["ext"]["ex"] == ex
    assert with_ext["ext"]["app"]["ver"] == "1.0.0" and with_ext["ext"]["app"]["sesId"] == "s-1"
    assert "dt" not in without["ext"] and "ex" not in without["ext"]


@pytest.mark.parametrize(
    "options,word",
    [({"priority": "urgent"}, "priority"), ({"ext": {"dt": {"traceId": "xyz"}}}, "traceId"), ({"ext": {"os": {"release": "11"}}}, "release")],
)
def test_log_event_refuses_bad_options_naming_them(make_client, options, word):
    client = make_client()
    with pytest.raises(tel.InvalidEventError, match=word):
        client.log_event("BadOptions", **options)


def test_a_higher_priority_takes_the_place_of_a_queued_normal_event(make_client, emulator):
    client = make_client(queue_max_events=2, flush_interval_ms=600_000)
    client.log("FirstNormal")
    client.log("SecondNormal")
    client.log_event("ImportantEvent", priority="high")
    stats = client.stats()
    assert stats["dropped_evicted"] == 1 and stats["dropped_queue_full"] == 0
    client.flush()
    assert sorted(e["name"] for e in emulator.accepted()) == ["ImportantEvent", "SecondNormal"]
    assert_conserved(client.stats())


def test_a_critical_event_outlives_a_sigkill_right_after_the_call(emulator, tmp_path):
    from support import run_python

    cache = tmp_path / "critical.cache"
    down = f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/"
    result = run_python(
        f"""
        import os, signal
        import onecollector_tel as tel
        client = tel.Client({IKEY!r}, endpoint={down!r}, cache_path={str(cache)!r}, flush_interval_ms=600000)
        client.log_event("CriticalEvent", {{"k": 1}}, priority="critical")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert result.returncode == -9, result.stderr
    with tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=cache, **FAST) as later:
        later.flush()
    assert [e["name"] for e in emulator.accepted()] == ["CriticalEvent"]


def test_a_critical_event_that_cannot_be_written_warns_and_is_still_sent(emulator, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # the cache folder would have to be created where a file is
    with tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=blocker / "events.cache", **FAST) as client:
        with pytest.warns(tel.NotDurableWarning, match="not written to the cache file") as caught:
            client.log_event("CriticalEvent", priority="critical")
        assert caught[0].message.status == _native.TEL_ERR_NOT_DURABLE
        client.flush()
        stats = client.stats()
    assert stats["not_durable"] == 1
    assert_conserved(stats)
    assert [e["name"] for e in emulator.accepted()] == ["CriticalEvent"]


def test_module_log_event_uses_the_default_session(start, emulator):
    start()
    tel.log_event("ModuleLevel", {"x": 1}, time=1712678400, ext={"app": {"sesId": "m"}})
    tel.flush()
    (envelope,) = emulator.accepted()
    assert envelope["time"] == "2024-04-09T16:00:00.000Z"
    assert envelope["ext"]["app"]["sesId"] == "m"
    with pytest.raises(tel.InvalidEventError, match="priority"):
        tel.log_event("BadPriority", priority="urgent")  # type: ignore[arg-type]


def test_on_delivery_gets_dicts_on_a_library_thread_and_they_add_up(emulator, tmp_path):
    reports = []
    threads = set()

    def on_delivery(report):
        threads.add(threading.get_ident())
        reports.append(report)

    emulator.script({"status": 400, "headers": {"Collector-Error": "Refused by the test"}})
    client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", on_delivery=on_delivery, **FAST)
    client.log("RefusedEvent")
    client.flush()
    for _ in range(3):
        client.log("SentEvent")
    client.close()
    assert threads and threading.get_ident() not in threads
    for report in reports:
        assert set(report) >= {"outcome", "events", "names", "status", "reason"}, report
    rejected = [r for r in reports if r["outcome"] == "rejected"]
    assert sum(r["events"] for r in rejected) == 1
    assert rejected[0]["status"] == 400 and rejected[0]["names"] == {"RefusedEvent": 1}
    sent = [r for r in reports if r["outcome"] == "sent"]
    assert sum(r["events"] for r in sent) == 3
    assert sum(r["names"].get("SentEvent", 0) for r in sent) == 3
    assert IKEY not in repr(reports)


def test_on_delivery_reports_what_went_to_the_cache(tmp_path):
    reports = []
    down = f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/"
    client = tel.Client(
        IKEY, endpoint=down, cache_path=tmp_path / "c.cache", on_delivery=reports.append, **dict(FAST, retry_max_attempts=1)
    )
    client.log("UnreachableEvent")
    client.log_event("UnreachableEvent", priority="high")
    client.flush()
    stats = client.stats()
    assert_conserved(stats)
    client.close()
    persisted = [r for r in reports if r["outcome"] == "persisted"]
    assert sum(r["events"] for r in persisted) == stats["persisted"] == 2
    assert sum(r["names"].get("UnreachableEvent", 0) for r in persisted) == 2
    assert all(r["reason"] for r in persisted)


def test_an_exception_in_on_delivery_is_logged_and_goes_no_further(emulator, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="onecollector_tel")
    calls = []

    def on_delivery(report):
        calls.append(report)
        raise RuntimeError("the host's callback failed")

    client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", on_delivery=on_delivery, **FAST)
    client.log("FirstEvent")
    client.flush()
    client.log("SecondEvent")
    client.flush()
    client.close()
    assert len(calls) >= 2  # the library went on calling it
    errors = [r for r in caplog.records if r.name == "onecollector_tel" and r.levelno == logging.ERROR]
    assert errors and "on_delivery" in errors[0].getMessage()
    assert errors[0].exc_info and "the host's callback failed" in str(errors[0].exc_info[1])
    assert [e["name"] for e in emulator.accepted()] == ["FirstEvent", "SecondEvent"]


def test_on_delivery_cannot_close_its_own_client(emulator, tmp_path):
    outcome = []
    holder = {}
    tried = threading.Event()

    def on_delivery(report):
        try:
            holder["client"].close()
            outcome.append("closed")
        except tel.InvalidArgumentError as e:
            outcome.append(str(e))
        tried.set()

    client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", on_delivery=on_delivery, **FAST)
    holder["client"] = client
    client.log("SomeEvent")
    client.flush()
    assert tried.wait(30)
    assert outcome and "Client.close()" in outcome[0], outcome
    assert not client.closed
    client.log("StillWorks")
    client.close()
    assert client.closed


def test_close_does_not_wait_past_its_deadline_for_a_blocked_on_delivery(emulator, tmp_path):
    entered = threading.Event()
    release = threading.Event()
    calls = []

    def on_delivery(report):
        calls.append(report)
        entered.set()
        release.wait(60)

    client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", on_delivery=on_delivery, **FAST)
    client.log("BlockedReport")
    client.flush()
    assert entered.wait(30)
    closer = threading.Thread(target=client.close, kwargs={"timeout": 0.3}, daemon=True)
    closer.start()
    closer.join(30)
    closed_while_blocked = not closer.is_alive()
    release.set()
    assert closed_while_blocked, "close() waited for the blocked on_delivery"
    assert client.closed
    del client
    client_calls = len(calls)
    tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "d.cache", **FAST).close()
    assert len(calls) == client_calls == 1


def test_client_messages_name_the_client_calls(make_client, emulator):
    emulator.default({"fault": "hang"})
    client = make_client(http_timeout_ms=60_000)
    client.log("StuckEvent")
    emulator.wait(requests=1)
    with pytest.raises(tel.TelemetryTimeoutError) as caught:
        client.flush(timeout=0.1)
    message = str(caught.value)
    assert "tel_" not in message, message
    with pytest.raises(tel.TelemetryTimeoutError):
        client.close(timeout=0.1)


def test_purge_deletes_what_a_later_client_would_send(emulator, tmp_path):
    cache = tmp_path / "purged.cache"
    down = f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/"
    client = tel.Client(IKEY, endpoint=down, cache_path=cache, **dict(FAST, retry_max_attempts=1))
    client.log("UndeliveredEvent")
    client.flush()
    assert client.stats()["persisted"] == 1
    client.close()
    assert cache.is_file()

    tel.purge(IKEY, cache_path=cache)

    with tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=cache, **FAST) as later:
        later.flush()
        assert later.stats()["replayed"] == 0
    assert emulator.accepted() == []


def test_purge_without_cache_path_purges_the_default_cache_of_the_tenant(emulator):
    # TEL_CACHE_DIR (set by conftest.py) holds the default cache of every key of the run.
    down = f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/"
    with tel.Client(OTHER_IKEY, endpoint=down, **dict(FAST, retry_max_attempts=1)) as client:
        client.log("DefaultCacheEvent")
        client.flush()
        assert client.stats()["persisted"] == 1
    tel.purge(OTHER_IKEY)
    with tel.Client(OTHER_IKEY, endpoint=emulator.endpoint, **FAST) as later:
        later.flush()
    assert emulator.accepted() == []


def test_purge_refuses_a_bad_key():
    with pytest.raises(tel.InvalidConfigError):
        tel.purge("")


def test_a_forgotten_client_is_closed_at_exit_and_delivers(emulator, tmp_path):
    from support import assert_clean_exit, run_python

    result = run_python(
        f"""
        import onecollector_tel as tel
        client = tel.Client({IKEY!r}, endpoint={emulator.endpoint!r}, cache_path={str(tmp_path / 'c.cache')!r},
                            flush_interval_ms=600000, on_delivery=lambda r: None)
        client.log("ForgottenClient")
        """
    )
    assert_clean_exit(result)
    assert [e["name"] for e in emulator.accepted()] == ["ForgottenClient"]
