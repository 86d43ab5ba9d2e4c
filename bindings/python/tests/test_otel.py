"""The OpenTelemetry adapter: the exporter's own behaviours, now through the library."""

from __future__ import annotations

import json
import logging

import pytest
from support import FAST, IKEY, TENANT

pytest.importorskip("opentelemetry.sdk")

from opentelemetry._logs import LogRecord  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402

import onecollector_tel as tel  # noqa: E402
from onecollector_tel.otel import OneCollectorLogExporter, resource_to_ext  # noqa: E402

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


def _record(body, attrs=None, resource=None) -> ReadableLogRecord:
    return ReadableLogRecord(
        log_record=LogRecord(timestamp=1_712_678_400_000_000_000, body=body, attributes=attrs or {}),
        resource=resource or Resource.get_empty(),
        instrumentation_scope=InstrumentationScope("modelkit"),
    )


@pytest.fixture
def make_exporter(emulator, cache_path):
    made = []

    def _make(**options) -> OneCollectorLogExporter:
        config = dict(FAST, cache_path=cache_path)
        config.update(options)
        exporter = OneCollectorLogExporter(ikey=IKEY, endpoint=emulator.endpoint, **config)
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


def test_a_resource_given_to_the_constructor_applies_at_once(make_exporter, emulator):
    make_exporter(resource=Resource.create(CLI_RESOURCE), ext={"app": {"ver": "9.9.9"}})
    tel.log("DirectEvent")  # the module API shares the exporter's session
    tel.flush()
    (envelope,) = emulator.accepted()
    assert envelope["ext"]["app"] == {"ver": "9.9.9", "sesId": "sesid-xyz"}
    assert envelope["ext"]["device"]["authId"] == "EXISTING"


def test_a_resource_the_library_refuses_is_reported_and_the_events_still_go(make_exporter, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="onecollector_tel")
    exporter = make_exporter()
    resource = Resource.create({"device_id": "hash-without-scope-prefix", "os.name": "Windows"})
    assert exporter.export([_record("WinMLCLIHeartbeat", resource=resource)]) == LogRecordExportResult.SUCCESS
    exporter.force_flush()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("scope prefix" in w for w in warnings), warnings
    (envelope,) = emulator.accepted()
    assert envelope["ext"]["device"]["localId"] != "hash-without-scope-prefix"


def test_several_records_serialize_as_several_lines(make_exporter, emulator):
    exporter = make_exporter(flush_interval_ms=600_000)
    batch = [_record("WinMLCLIHeartbeat"), _record("WinMLCLIAction", {"action_name": "build", "success": True})]
    assert exporter.export(batch) == LogRecordExportResult.SUCCESS
    exporter.force_flush()
    (request,) = emulator.requests()
    assert len(request["lines"]) == 2
    assert [json.loads(line)["name"] for line in request["lines"]] == ["WinMLCLIHeartbeat", "WinMLCLIAction"]


def test_shutdown_blocks_further_exports(make_exporter, emulator):
    exporter = make_exporter()
    exporter.shutdown()
    assert exporter.export([_record("WinMLCLIHeartbeat")]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is False
    assert emulator.requests() == []
    with pytest.raises(tel.NotInitializedError):
        tel.log("SessionIsOver")


def test_an_empty_batch_sends_nothing(make_exporter, emulator):
    exporter = make_exporter()
    assert exporter.export([]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert emulator.requests() == []


def test_a_record_the_library_refuses_fails_the_export_but_not_the_others(make_exporter, emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="onecollector_tel")
    exporter = make_exporter()
    result = exporter.export([_record("hi"), _record("GoodEvent"), _record(None)])
    assert result == LogRecordExportResult.FAILURE
    exporter.force_flush()
    assert [e["name"] for e in emulator.accepted()] == ["GoodEvent"]
    assert any("4 to 100" in r.getMessage() for r in caplog.records)


def test_failed_deliveries_are_the_librarys_to_retry(make_exporter, emulator):
    emulator.script({"status": 503}, {"fault": "reset"})
    exporter = make_exporter()
    assert exporter.export([_record("WinMLCLIHeartbeat")]) == LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    assert [r["status"] for r in emulator.requests()] == [503, 0, 200]
    assert tel.stats()["retries"] == 2


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
    with pytest.raises(tel.NotInitializedError):
        tel.log("AfterProviderShutdown")


def test_an_exporter_made_while_a_session_is_live_sends_through_it(start, emulator, cache_path):
    start()
    exporter = OneCollectorLogExporter(ikey=IKEY, endpoint=emulator.endpoint, cache_path=cache_path)
    exporter.export([_record("ThroughTheLiveSession", resource=Resource.create(CLI_RESOURCE))])
    exporter.shutdown()  # not its session to end
    tel.flush()
    (envelope,) = emulator.accepted()
    assert envelope["name"] == "ThroughTheLiveSession"
    assert envelope["ext"]["os"]["name"] != "Windows"  # the live session's ext, not the Resource's


def test_resource_to_ext_table():
    assert resource_to_ext(None) == {}
    assert resource_to_ext(Resource.create({})) == {}
    assert resource_to_ext(Resource.create({"os.name": "Windows"})) == {"os": {"name": "Windows"}}
    assert resource_to_ext(Resource.create({"os.name": "Windows", "custom.attr": "x"})) == {"os": {"name": "Windows"}}
    assert resource_to_ext(Resource.create({"os.release": "11", "initTs": 1.0})) == {}
    assert resource_to_ext(Resource.create({"app_version": 3})) == {"app": {"ver": "3"}}
