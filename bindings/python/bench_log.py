"""Per-call cost on the caller's thread of `onecollector_tel.log()`, and of the OpenTelemetry
path it replaces: `logger.emit(LogRecord(...))` through a `LoggerProvider` and a
`BatchLogRecordProcessor` whose exporter does nothing (its queue sized to hold every call).

    python bench_log.py [--calls N] [--repeat R] [--endpoint URL]

Both log the same event (the CLI's action event, six properties). onecollector_tel sends to
`telctl serve` (found as for the tests: TELCTL, else the cargo target folder) unless --endpoint
names a collector, so its worker thread really batches, compresses and posts meanwhile. Prints
the best and the median over the repeats, of the calling thread's CPU time and of wall-clock
time; a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

NAME = "WinMLCLIAction"
PROPS = {
    "invoked_from": "Interactive",
    "action_name": "build",
    "device": "npu",
    "ep": "QNNExecutionProvider",
    "duration_ms": 1234,
    "success": True,
}
RESOURCE = {
    "device_id": "r:5b1f0c1e-8e7e-4d8f-9a51-0d1b2c3d4e5f",
    "id_status": "EXISTING",
    "os.name": "Linux",
    "os.version": "6.1",
    "os.arch": "x86_64",
    "app_version": "0.3.0",
    "app_instance_id": "2f1c3f7e-4c1e-4a55-8f8c-3f1e2d3c4b5a",
}


class Timings:
    """Nanoseconds per call, one figure per repeat: wall-clock, and CPU time of the calling
    thread (which other processes competing for the machine do not inflate)."""

    def __init__(self) -> None:
        self.wall: List[float] = []
        self.cpu: List[float] = []

    def line(self) -> str:
        def us(values: List[float]) -> str:
            return f"{min(values) / 1000:6.2f} / {statistics.median(values) / 1000:6.2f} us"

        return f"cpu {us(self.cpu)}   wall {us(self.wall)}"


def measure(calls: int, repeat: int, run: Callable[[int], None], between: Callable[[], None]) -> Timings:
    """Times `run(calls)` once per repeat; `between` runs untimed after each."""
    run(min(calls, 1000))  # warm up
    between()
    timings = Timings()
    for _ in range(repeat):
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        run(calls)
        timings.cpu.append((time.thread_time_ns() - cpu) / calls)
        timings.wall.append((time.perf_counter_ns() - wall) / calls)
        between()
    return timings


def bench_onecollector_tel(calls: int, repeat: int, endpoint: str | None) -> Tuple[Timings, str]:
    os.environ.setdefault("TEL_CACHE_DIR", tempfile.mkdtemp(prefix="tel-bench-"))
    import onecollector_tel as tel

    emulator = None
    if endpoint is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
        from support import Emulator

        emulator = Emulator()
        endpoint = emulator.endpoint
    # Room for every call, so that none is answered by the (cheaper) full-queue path.
    tel.init("abc-0123456789abcdef-bench", endpoint=endpoint, cache_path=None, queue_max_events=calls + 1000)
    log = tel.log

    def run(n: int) -> None:
        for _ in range(n):
            log(NAME, PROPS)

    def drain() -> None:
        try:
            tel.flush(timeout=60)
        except tel.TelemetryTimeoutError:
            pass

    try:
        result = measure(calls, repeat, run, drain)
        stats = tel.stats()
    finally:
        tel.shutdown(timeout=5)
        if emulator is not None:
            emulator.close()
    note = (
        f"library {tel.version()} from {tel.LIBRARY_PATH}, sent {stats['sent']} to {endpoint}, "
        f"dropped for a full queue {stats['dropped_queue_full']}"
    )
    return result, note


def bench_opentelemetry(calls: int, repeat: int) -> Tuple[Timings, str]:
    from importlib.metadata import version

    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.resources import Resource

    class NothingExporter(LogRecordExporter):
        def export(self, batch):  # type: ignore[no-untyped-def]
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    provider = LoggerProvider(resource=Resource.create(RESOURCE), shutdown_on_exit=False)
    # Room for every call, as for onecollector_tel: the default queue (2048) would drop records
    # on a path cheaper than the one measured.
    provider.add_log_record_processor(BatchLogRecordProcessor(NothingExporter(), max_queue_size=calls + 1000))
    logger = provider.get_logger("modelkit")
    time_ns = time.time_ns

    def run(n: int) -> None:
        # As the CLI does it: a LogRecord per event, then emit.
        for _ in range(n):
            logger.emit(LogRecord(timestamp=time_ns(), body=NAME, attributes=PROPS))

    try:
        result = measure(calls, repeat, run, provider.force_flush)
    finally:
        provider.shutdown()
    return result, f"opentelemetry-sdk {version('opentelemetry-sdk')}, BatchLogRecordProcessor, no-op exporter"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per repeat (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--endpoint", help="a collector URL instead of a `telctl serve` started here")
    args = parser.parse_args()

    rows = []
    tel_times, tel_note = bench_onecollector_tel(args.calls, args.repeat, args.endpoint)
    rows.append(("onecollector_tel.log()", tel_times, tel_note))
    try:
        otel_times, otel_note = bench_opentelemetry(args.calls, args.repeat)
        rows.append(("OpenTelemetry logger.emit()", otel_times, otel_note))
    except ImportError as e:
        print(f"OpenTelemetry path not measured: {e} (pip install 'onecollector-tel[otel]')", file=sys.stderr)

    print(f"per-call cost on the calling thread, {args.calls} calls x {args.repeat} repeats (best / median):")
    for label, timings, note in rows:
        print(f"  {label:<28} {timings.line()}")
        print(f"  {'':<28} {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
