"""The OpenTelemetry adapter: the exporter's own behaviours, its mapping of records, its own
client, and a burst through the SDK's defaults."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from support import FAST, IKEY, TENANT, Emulator

pytest.importorskip("opentelemetry.sdk")

from opentelemetry._logs import LogRecord, SeverityNumber  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402
from opentelemetry.trace import TraceFlags  # noqa: E402

import onecollector_tel as tel  # noqa: E402
from onecollector_tel import _native  # noqa: E402
from onecollector_tel.otel import OneCollectorLogExporter, resource_to_ext  # noqa: E402

pytestmark = pytest.mark.skipif(
    not _native.has("tel_client_new"), reason="the exporter needs ABI 1.1 clients (tel_client_new)"
)

OTHER_IKEY = "def-0123456789abcdef-0123456789abcdef"

#: The Resource the CLI builds, with the two attributes that must never reach the wire.
CLI_RESOURCE = {
    "device_id": "r:5b1f0c1e-8e7e-4d8f-9a51-0d1b2c3d4e5f",
    "id_status": "EXISTING",
    "os.name": "Windows",
    "os.version": "10.0.26200",
    "os.release": "11",
    "os.arch": "AMD64",
    "app_version": "0.0.1",
    "app_instance_id": "sesid-xyz",
    "initTs": 1712678400.0,
}


def _record(body, attrs=None, resource=None, **fields) -> ReadableLogRecord:
    fields.setdefault("timestamp", 1_712_678_400_000_000_000)
    return ReadableLogRecord(
        log_record=LogRecord(body=body, attributes=attrs or {}, **fields),
        resource=resource or Resource.get_empty(),
        instrumentation_scope=InstrumentationScope("modelkit"),
    )


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_exporter(emulator, cache_path):
    made = []

    def _make(**options) -> OneCollectorLogExporter:
        config = dict(FAST, cache_path=cache_path.with_name(f"exporter{len(made)}.cache"), endpoint=emulator.endpoint)
        config.update(options)
        ikey = config.pop("ikey", IKEY)
        exporter = OneCollectorLogExporter(ikey=ikey, **config)
        made.append(exporter)
        return exporter

    yield _make
    for exporter in made:
        exporter.shutdown()


@pytest.mark.parametrize(
    "ikey,endpoint",
    [
        ("", "https://example.invalid/"),
        (IKEY, ""),
        ("", ""),
        ("noseparator", "https://example.invalid/OneCollector/1.0/"),
        ("-leading-dash", "https://example.invalid/OneCollector/1.0/"),
    ],
)
def test_constructor_rejects_empty_or_malformed_keys_and_empty_endpoints(ikey, endpoint, cache_path):
    with pytest.raises(ValueError):
        OneCollectorLogExporter(ikey=ikey, endpoint=endpoint, cache_path=cache_path)
    with pytest.raises(tel.NotInitializedError):
        tel.log("NoSessionWasStarted")


def test_export_sends_ndjson_with_the_key_in_the_header_only(make_exporter, emulator):
    exporter = make_exporter()
    record = _record("WinMLCLIAction", {"action_name": "build", "success": True})
    assert exporter.export([record]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    (request,) = emulator.requests()
    assert request["headers"]["content-type"] == "application/x-json-stream; charset=utf-8"
    assert request["headers"]["x-apikey"] == IKEY
    assert not request["body"].startswith("[")
    assert request["full_key_in_body"] is False and IKEY not in request["body"]
    (envelope,) = [json.loads(line) for line in request["lines"]]
    assert envelope["iKey"] == f"o:{TENANT}"
    assert envelope["name"] == "WinMLCLIAction"
    assert envelope["data"] == {"action_name": "build", "success": True}


def test_resource_attributes_map_to_documented_ext_fields_only(make_exporter, emulator):
    exporter = make_exporter()
    resource = Resource.create(dict(CLI_RESOURCE, **{"custom.attr": "x"}))
    assert exporter.export([_record("WinMLCLIHeartbeat", resource=resource)]) == LogRecordExportResult.SUCCESS
    exporter.force_flush()
    (request,) = emulator.requests()
    (envelope,) = emulator.accepted()
    ext = envelope["ext"]
    assert ext["device"] == {"localId": CLI_RESOURCE["device_id"], "authId": "EXISTING", "deviceClass": "AMD64"}
    assert ext["os"] == {"name": "Windows", "ver": "10.0.26200"}
    assert ext["app"] == {"ver": "0.0.1", "sesId": "sesid-xyz"}
    # The guard: os.release and initTs never reach the wire.
    for line in request["lines"]:
        assert "release" not in json.loads(line)["ext"]["os"]
        assert "initTs" not in line and "custom.attr" not in line


def test_a_resource_given_to_the_constructor_fills_records_without_one(make_exporter, emulator):
    exporter = make_exporter(resource=Resource.create(CLI_RESOURCE), ext={"app": {"ver": "9.9.9"}})
    exporter.export([_record("NoResourceOfItsOwn")])
    exporter.export([_record("WithItsOwn", resource=Resource.create({"os.name": "Linux"}))])
    assert exporter.force_flush() is True
    first, second = emulator.accepted()
    assert first["ext"]["app"] == {"ver": "9.9.9", "sesId": "sesid-xyz"}  # ext= wins over the Resource
    assert first["ext"]["device"]["authId"] == "EXISTING"
    assert second["ext"]["os"]["name"] == "Linux" and second["ext"]["os"]["ver"] == "10.0.26200"


def test_a_refused_resource_field_is_dropped_with_one_warning_and_the_rest_go(make_exporter, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="onecollector_tel")
    exporter = make_exporter()
    # The device id without a scope prefix, as the peer's own test Resource has it.
    resource = Resource.create(dict(CLI_RESOURCE, device_id="hash-abc"))
    assert exporter.export([_record("FirstHeartbeat", resource=resource)]) == LogRecordExportResult.SUCCESS
    assert exporter.export([_record("SecondHeartbeat", resource=resource)]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "ext.device.localId" in warnings[0] and "scope prefix" in warnings[0]
    for envelope in emulator.accepted():
        assert envelope["ext"]["device"]["localId"] != "hash-abc"
        assert envelope["ext"]["device"]["authId"] == "EXISTING"
        assert envelope["ext"]["device"]["deviceClass"] == "AMD64"
        assert envelope["ext"]["os"] == {"name": "Windows", "ver": "10.0.26200"}
        assert envelope["ext"]["app"] == {"ver": "0.0.1", "sesId": "sesid-xyz"}


def test_several_records_serialize_as_several_lines(make_exporter, emulator):
    exporter = make_exporter(flush_interval_ms=600_000)
    batch = [_record("WinMLCLIHeartbeat"), _record("WinMLCLIAction", {"action_name": "build", "success": True})]
    assert exporter.export(batch) == LogRecordExportResult.SUCCESS
    exporter.force_flush()
    (request,) = emulator.requests()
    assert len(request["lines"]) == 2
    assert [json.loads(line)["name"] for line in request["lines"]] == ["WinMLCLIHeartbeat", "WinMLCLIAction"]


def test_shutdown_fails_further_exports(make_exporter, emulator):
    exporter = make_exporter()
    exporter.shutdown()
    assert exporter.export([_record("WinMLCLIHeartbeat")]) == LogRecordExportResult.FAILURE
    assert exporter.force_flush() is False
    exporter.shutdown()  # a second shutdown does nothing
    assert emulator.requests() == []


def test_an_empty_batch_sends_nothing(make_exporter, emulator):
    exporter = make_exporter()
    assert exporter.export([]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert emulator.requests() == []


def test_a_record_the_library_refuses_fails_the_export_with_a_warning_but_not_the_others(make_exporter, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="onecollector_tel")
    exporter = make_exporter(event_max_bytes=1000)
    result = exporter.export([_record("TooBig", {"pad": "x" * 2000}), _record("GoodEvent"), _record("NotJson", {"s": {1, 2}})])
    assert result == LogRecordExportResult.FAILURE
    exporter.force_flush()
    assert [e["name"] for e in emulator.accepted()] == ["GoodEvent"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'TooBig' not sent" in w and "event_max_bytes" in w for w in warnings), warnings
    assert any("'NotJson' not sent" in w and "JSON" in w for w in warnings), warnings


def test_records_without_a_valid_name_go_out_under_the_default_name(make_exporter, emulator):
    exporter = make_exporter()
    result = exporter.export(
        [
            _record("hi there, a message"),
            _record(None),
            _record("not a name", {"event.name": "App.Named", "k": 1}),
            _record({"structured": True}),
        ]
    )
    assert result == LogRecordExportResult.SUCCESS
    exporter.force_flush()
    events = emulator.accepted()
    assert [e["name"] for e in events] == ["OpenTelemetry.Logs.Log", "OpenTelemetry.Logs.Log", "App.Named", "OpenTelemetry.Logs.Log"]
    assert events[0]["data"]["body"] == "hi there, a message" and events[0]["data"]["logger"] == "modelkit"
    assert "body" not in events[1]["data"]
    assert events[2]["data"] == {"k": 1}, "event.name names the event and leaves data"
    assert events[3]["data"]["body"] == {"structured": True}
    namespaced = make_exporter(event_namespace="Contoso.Tool")
    namespaced.export([_record("a message")])
    namespaced.force_flush()
    assert emulator.accepted()[-1]["name"] == "Contoso.Tool.Log"
    with pytest.raises(tel.InvalidConfigError, match="event_namespace"):
        make_exporter(event_namespace="bad namespace")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_logging_record_through_the_sdks_logging_handler_is_delivered(make_exporter, emulator):
    from opentelemetry.sdk._logs import LoggingHandler

    provider = LoggerProvider(resource=Resource.create({}), shutdown_on_exit=False)
    exporter = make_exporter()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    app_logger = logging.getLogger("contoso.app")
    app_logger.propagate = False
    app_logger.setLevel(logging.INFO)
    app_logger.addHandler(handler)
    try:
        app_logger.warning("Disk %s is %d%% full", "C:", 93)
        app_logger.info("Named", extra={"event.name": "Contoso.DiskFull", "percent": 93})
        provider.force_flush()
    finally:
        app_logger.removeHandler(handler)
    exporter.force_flush()
    events = {e["name"]: e for e in emulator.accepted()}
    assert set(events) == {"OpenTelemetry.Logs.Log", "Contoso.DiskFull"}, list(events)
    plain = events["OpenTelemetry.Logs.Log"]["data"]
    assert plain["body"] == "Disk C: is 93% full"
    assert plain["logger"] == "contoso.app"
    assert plain["severityText"] == "WARN" or plain["severityText"].startswith("WARN"), plain
    assert events["Contoso.DiskFull"]["data"]["percent"] == 93


def test_failed_deliveries_are_the_librarys_to_retry(make_exporter, emulator):
    emulator.script({"status": 503}, {"fault": "reset"})
    exporter = make_exporter()
    assert exporter.export([_record("WinMLCLIHeartbeat")]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    assert [r["status"] for r in emulator.requests()] == [503, 0, 200]
    assert exporter.stats()["retries"] == 2


def test_export_succeeds_and_force_flush_is_false_when_records_were_only_cached(make_exporter, emulator):
    exporter = make_exporter(endpoint=f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/", retry_max_attempts=1)
    assert exporter.export([_record("OfflineEvent")]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is False
    assert exporter.stats()["persisted"] == 1
    assert exporter.force_flush() is True  # nothing new since


def test_export_fails_when_the_queue_drops_a_record(make_exporter, emulator):
    exporter = make_exporter(queue_max_events=1, flush_interval_ms=600_000)
    result = exporter.export([_record("FirstEvent"), _record("DroppedEvent")])
    assert result == LogRecordExportResult.FAILURE
    assert exporter.stats()["dropped_queue_full"] == 1


def test_the_one_line_swap_through_logger_provider_and_batch_processor(emulator, cache_path):
    # What the CLI's create_logger_provider() does, with only the import changed.
    resource = Resource.create(CLI_RESOURCE)
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = OneCollectorLogExporter(ikey=IKEY, endpoint=emulator.endpoint, cache_path=cache_path)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("modelkit")
    logger.emit(LogRecord(body="WinMLCLIHeartbeat", attributes={}))
    logger.emit(LogRecord(body="WinMLCLIAction", attributes={"action_name": "build", "duration_ms": 12}))
    assert provider.force_flush()
    assert exporter.force_flush()
    names = [e["name"] for e in emulator.accepted()]
    assert names == ["WinMLCLIHeartbeat", "WinMLCLIAction"]
    assert emulator.accepted()[1]["ext"]["os"] == {"name": "Windows", "ver": "10.0.26200"}
    provider.shutdown()
    assert exporter.export([_record("AfterProviderShutdown")]) == LogRecordExportResult.FAILURE


def test_an_exporter_never_sends_through_the_default_session(start, emulator, cache_path, tmp_path):
    start()  # the default session: key IKEY, this emulator
    other = Emulator()
    try:
        exporter = OneCollectorLogExporter(
            ikey=OTHER_IKEY, endpoint=other.endpoint, cache_path=tmp_path / "exporter.cache", **FAST
        )
        exporter.export([_record("ThroughItsOwnClient", resource=Resource.create(CLI_RESOURCE))])
        assert exporter.force_flush() is True
        exporter.shutdown()
        tel.log("ThroughTheDefaultSession")
        tel.flush()  # the default session is still live: the exporter's shutdown ended only its client
        (envelope,) = other.accepted()
        assert envelope["name"] == "ThroughItsOwnClient" and envelope["iKey"] == "o:def"
        assert envelope["ext"]["os"]["name"] == "Windows"
        assert other.requests()[0]["headers"]["x-apikey"] == OTHER_IKEY
        assert [e["name"] for e in emulator.accepted()] == ["ThroughTheDefaultSession"]
    finally:
        other.close()


def test_two_exporters_with_two_keys_reach_their_own_tenants(make_exporter, emulator):
    first = make_exporter()
    second = make_exporter(ikey=OTHER_IKEY, cache_path=None)
    first.export([_record("FirstTenant")])
    second.export([_record("SecondTenant")])
    assert first.force_flush() and second.force_flush()
    by_name = {e["name"]: e["iKey"] for e in emulator.accepted()}
    assert by_name == {"FirstTenant": f"o:{TENANT}", "SecondTenant": "o:def"}
    keys = {r["headers"]["x-apikey"] for r in emulator.requests()}
    assert keys == {IKEY, OTHER_IKEY}


def test_the_record_timestamp_is_the_event_time_else_the_observed_one(make_exporter, emulator):
    exporter = make_exporter()
    exporter.export(
        [
            _record("Stamped", timestamp=1_712_678_400_123_456_789, observed_timestamp=1_800_000_000_000_000_000),
            _record("ObservedOnly", timestamp=None, observed_timestamp=1_712_678_401_000_000_000),
        ]
    )
    exporter.force_flush()
    times = {e["name"]: e["time"] for e in emulator.accepted()}
    assert times == {"Stamped": "2024-04-09T16:00:00.123Z", "ObservedOnly": "2024-04-09T16:00:01.000Z"}


def test_severity_goes_to_data(make_exporter, emulator):
    exporter = make_exporter()
    exporter.export(
        [
            _record("Warned", {"k": 1}, severity_number=SeverityNumber.WARN, severity_text="WARN"),
            _record("NumberOnly", severity_number=SeverityNumber.ERROR),
            _record("NoSeverity"),
        ]
    )
    exporter.force_flush()
    data = {e["name"]: e["data"] for e in emulator.accepted()}
    assert data["Warned"] == {"k": 1, "severityText": "WARN", "severityNumber": 13}
    assert data["NumberOnly"] == {"severityText": "ERROR", "severityNumber": 17}
    assert data["NoSeverity"] == {}


def test_trace_context_goes_to_ext_dt(make_exporter, emulator_takes_dt_ex):
    emulator = emulator_takes_dt_ex
    exporter = make_exporter()
    exporter.export(
        [
            _record(
                "Traced",
                trace_id=0x0AF7651916CD43DD8448EB211C80319C,
                span_id=0x00F067AA0BA902B7,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            ),
            _record("Untraced"),
        ]
    )
    exporter.force_flush()
    ext = {e["name"]: e["ext"] for e in emulator.accepted()}
    assert ext["Traced"]["dt"] == {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7", "traceFlags": 1}
    assert "dt" not in ext["Untraced"]


def test_the_exception_goes_to_ext_ex_from_the_record_or_its_attributes(make_exporter, emulator_takes_dt_ex, cache_path):
    emulator = emulator_takes_dt_ex
    provider = LoggerProvider(resource=Resource.create(CLI_RESOURCE), shutdown_on_exit=False)
    exporter = make_exporter()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    try:
        raise ValueError("boom")
    except ValueError as e:
        error = e
    # Through the SDK: it keeps record.exception and adds the exception.* attributes.
    provider.get_logger("modelkit").emit(LogRecord(body="WithException", attributes={"k": "v"}, exception=error))
    provider.force_flush()
    # Attributes alone, as an older SDK or a LoggingHandler leaves them.
    exporter.export(
        [
            _record(
                "WithAttributes",
                {"exception.type": "KeyError", "exception.message": "'x'", "exception.stacktrace": "Traceback ...", "k": "w"},
            )
        ]
    )
    exporter.force_flush()
    by_name = {e["name"]: e for e in emulator.accepted()}
    sdk = by_name["WithException"]
    assert sdk["ext"]["ex"]["type"] == "ValueError" and sdk["ext"]["ex"]["msg"] == "boom"
    assert "ValueError: boom" in sdk["ext"]["ex"]["stack"] and "raise ValueError" in sdk["ext"]["ex"]["stack"]
    assert sdk["data"] == {"k": "v"}
    attrs = by_name["WithAttributes"]
    assert attrs["ext"]["ex"] == {"type": "KeyError", "msg": "'x'", "stack": "Traceback ..."}
    assert attrs["data"] == {"k": "w"}
    provider.shutdown()


@pytest.mark.skipif(
    "debug" in tel.LIBRARY_PATH.parts,
    reason="a burst measures the hand-over pace: it needs an optimised build of the library, not a debug one",
)
def test_a_burst_through_the_sdk_defaults_is_delivered(emulator, cache_path):
    # 20,000 records emitted at once: BatchLogRecordProcessor's defaults (a queue of 2,048,
    # batches of 512) drop what its export thread does not take in time, and that thread must
    # not wait for the GIL at every record it hands over. The library's queue holds the whole
    # burst, so that what is measured is the hand-over, not how fast the (debug) emulator
    # judges 20,000 envelopes.
    #
    # How much the SDK's queue drops depends on how the interpreter schedules its two threads,
    # which a loaded machine disturbs now and then: the burst is tried up to three times and one
    # run at 99 % passes. Through a GIL-releasing binding no run gets there (65-86 % measured).
    records = 20_000
    attributes = {"action_name": "build", "device": "npu", "duration_ms": 1234, "success": True}
    runs = []
    for attempt in range(3):
        emulator.reset()
        provider = LoggerProvider(resource=Resource.create(CLI_RESOURCE), shutdown_on_exit=False)
        exporter = OneCollectorLogExporter(
            ikey=IKEY,
            endpoint=emulator.endpoint,
            cache_path=cache_path.with_name(f"burst-{attempt}.cache"),
            queue_max_events=2 * records,
        )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        logger = provider.get_logger("modelkit")
        for _ in range(records):
            logger.emit(LogRecord(body="WinMLCLIAction", attributes=attributes))
        provider.force_flush()
        provider.shutdown()
        runs.append(emulator.wait(accepted=0)["accepted"])
        if runs[-1] >= 0.99 * records:
            break
    assert max(runs) >= 0.99 * records, f"delivered of {records} per run: {runs}"


def test_resource_to_ext_table():
    assert resource_to_ext(None) == {}
    assert resource_to_ext(Resource.create({})) == {}
    assert resource_to_ext(Resource.create({"os.name": "Windows"})) == {"os": {"name": "Windows"}}
    assert resource_to_ext(Resource.create({"os.name": "Windows", "custom.attr": "x"})) == {"os": {"name": "Windows"}}
    assert resource_to_ext(Resource.create({"os.release": "11", "initTs": 1.0})) == {}
    assert resource_to_ext(Resource.create({"app_version": 3})) == {"app": {"ver": "3"}}


def test_checking_the_configuration_leaves_the_cache_alone(emulator, cache_path):
    # The constructor checks the configuration with an opted-out client, and opting out deletes
    # the cache file: the check must not name the host's cache. A file left by an earlier run
    # is still there, and is delivered once the client starts.
    with tel.Client(IKEY, endpoint=f"http://127.0.0.1:{_closed_port()}/OneCollector/1.0/", cache_path=cache_path,
                    **dict(FAST, retry_max_attempts=1)) as earlier:  # fmt: skip
        earlier.log("FromAnEarlierRun")
        earlier.flush()
    assert cache_path.is_file()
    exporter = OneCollectorLogExporter(ikey=IKEY, endpoint=emulator.endpoint, cache_path=cache_path, **FAST)
    OneCollectorLogExporter(ikey=IKEY, endpoint=emulator.endpoint, cache_path=cache_path, enabled=True).shutdown()
    assert cache_path.is_file()
    exporter.export([_record("ThisRun")])
    assert exporter.force_flush() is True
    assert sorted(e["name"] for e in emulator.accepted()) == ["FromAnEarlierRun", "ThisRun"]
    exporter.shutdown()


def test_the_constructor_checks_enabled_and_cache_path_itself(cache_path):
    with pytest.raises(ValueError, match="enabled"):
        OneCollectorLogExporter(ikey=IKEY, enabled="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_path"):
        OneCollectorLogExporter(ikey=IKEY, cache_path=3)  # type: ignore[arg-type]


class _PersistentCache:
    """What the hand-written exporter was given as ``cache=``."""

    def __init__(self, path: str) -> None:
        self.path = path


def test_the_old_exporters_cache_keyword_is_a_type_error_naming_it_and_the_guide(cache_path):
    with pytest.raises(TypeError) as raised:
        OneCollectorLogExporter(IKEY, "http://127.0.0.1:9/OneCollector/1.0/", cache=_PersistentCache(str(cache_path)))
    message = str(raised.value)
    assert "cache=" in message and "cache_path=" in message and "MIGRATION.md" in message, message
    assert not isinstance(raised.value, tel.TelemetryError)
    # Whatever it is given: a path string would otherwise reach the library as an unknown key.
    with pytest.raises(TypeError, match="MIGRATION.md"):
        OneCollectorLogExporter(IKEY, cache=str(cache_path))
