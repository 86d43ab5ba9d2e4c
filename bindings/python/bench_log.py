"""Per-call cost on the caller's thread of `onecollector_tel.log()`, and of the OpenTelemetry
path it replaces: `logger.emit(LogRecord(...))` through a `LoggerProvider` and a
`BatchLogRecordProcessor` whose exporter does nothing (its queue sized to hold every call).
Then two figures of the GIL:

- contended: `log()` per call (median / p99 of wall-clock time) alone, beside a busy Python
  thread, and beside it again with the call made the old way, through `ctypes.CDLL` (the GIL
  released and taken back at every call);
- burst: 20,000 records emitted at once through `LoggerProvider` + `BatchLogRecordProcessor`
  (SDK defaults: a queue of 2,048, batches of 512) + `onecollector_tel.otel`'s exporter, the
  per-emit cost and how many reached the emulator, over --runs runs; and the same with the
  exporter's calls made through `ctypes.CDLL`.

    python bench_log.py [--calls N] [--repeat R] [--endpoint URL] [--contended-calls N] [--burst N] [--runs R]

Both log the same event (the CLI's action event, six properties). onecollector_tel sends to
`telctl serve` (found as for the tests: TELCTL, else the cargo target folder; point TELCTL at a
release build, `cargo build --release -p telctl`, for the bursts) unless --endpoint
names a collector, so its worker thread really batches, compresses and posts meanwhile. Prints
the best and the median over the repeats, of the calling thread's CPU time and of wall-clock
time; a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

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


def percentiles(samples: List[int]) -> str:
    """Median / p99 / mean of per-call nanoseconds, in microseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) / 1000:8.2f} / {p99 / 1000:8.2f} / {statistics.mean(ordered) / 1000:8.2f} us"


@contextlib.contextmanager
def busy_python_thread() -> Iterator[None]:
    """A thread that runs Python code without pause, as a host's busy thread does."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def emulator_for():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
    from support import Emulator

    return Emulator()



def bench_contended(calls: int, emulator) -> List[Tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Per-call wall-clock time of log(), alone and beside a busy Python thread."""
    import onecollector_tel as tel
    from onecollector_tel import _api, _native

    tel.init("abc-0123456789abcdef-bench", endpoint=emulator.endpoint, cache_path=None, queue_max_events=4 * calls + 1000)
    clock = time.perf_counter_ns

    def timed(log: Callable[..., None]) -> List[int]:
        samples = []
        for _ in range(calls):
            start = clock()
            log(NAME, PROPS)
            samples.append(clock() - start)
        tel.flush(timeout=60)
        return samples

    rows = []
    try:
        timed(tel.log)  # warm up
        rows.append(("log(), alone", percentiles(timed(tel.log))))
        with busy_python_thread():
            rows.append(("log(), beside a busy thread", percentiles(timed(tel.log))))
        # The old binding: the same call through CDLL, which releases the GIL.
        previous = _api._nolock
        _api._nolock = _native.lib  # type: ignore[assignment]
        try:
            with busy_python_thread():
                rows.append(("the same through CDLL (old)", percentiles(timed(tel.log))))
        finally:
            _api._nolock = previous
    finally:
        tel.shutdown(timeout=5)
    return rows


def bench_log_burst(records: int, runs: int, emulator) -> str:  # type: ignore[no-untyped-def]
    """`records` log() calls at once on a session with the library's defaults (a queue of
    10,000), then shutdown; the share the emulator accepted, per run."""
    import onecollector_tel as tel

    shares = []
    drops = []
    for _ in range(runs):
        emulator.reset()
        tel.init("abc-0123456789abcdef-bench", endpoint=emulator.endpoint, cache_path=None)
        for _ in range(records):
            tel.log(NAME, PROPS)
        tel.shutdown(timeout=30)
        drops.append(tel.stats()["dropped_queue_full"])
        shares.append(f"{100 * len(emulator.accepted()) / records:.1f} %")
    return f"delivered {', '.join(shares)} of {records} (the library's full queue dropped {drops})"


def bench_burst(records: int, runs: int, emulator, release_gil: bool) -> Tuple[str, str]:  # type: ignore[no-untyped-def]
    """`records` emitted at once through the SDK's defaults and the exporter; per-emit cost and
    the delivered share, over `runs` runs."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    from onecollector_tel import _client, _native
    from onecollector_tel.otel import OneCollectorLogExporter

    previous = _client._nolock
    if release_gil:
        _client._nolock = _native.lib  # type: ignore[assignment]
    delivered: List[int] = []
    library_drops: List[int] = []
    samples: List[int] = []
    clock = time.perf_counter_ns
    try:
        for _ in range(runs):
            emulator.reset()
            provider = LoggerProvider(resource=Resource.create(RESOURCE), shutdown_on_exit=False)
            exporter = OneCollectorLogExporter("abc-0123456789abcdef-bench", emulator.endpoint, cache_path=None)
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            logger = provider.get_logger("modelkit")
            for _ in range(records):
                start = clock()
                logger.emit(LogRecord(timestamp=time.time_ns(), body=NAME, attributes=PROPS))
                samples.append(clock() - start)
            provider.force_flush()
            library_drops.append(exporter._client.stats()["dropped_queue_full"] if exporter._client else 0)
            provider.shutdown()
            delivered.append(len(emulator.accepted()))
    finally:
        _client._nolock = previous
    shares = ", ".join(f"{100 * d / records:.1f} %" for d in delivered)
    return percentiles(samples), f"delivered {shares} of {records} (the library's full queue dropped {library_drops})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per repeat (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--endpoint", help="a collector URL instead of a `telctl serve` started here")
    parser.add_argument("--contended-calls", type=int, default=2_000, help="calls per contended figure (default 2000)")
    parser.add_argument("--burst", type=int, default=20_000, help="records per OpenTelemetry burst (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="bursts (default 3)")
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

    emulator = emulator_for()
    try:
        print(f"\nper-call wall-clock time, {args.contended_calls} calls (median / p99 / mean):")
        for label, figure in bench_contended(args.contended_calls, emulator):
            print(f"  {label:<36} {figure}")
        print(f"\nlog() burst of {args.burst} calls, library defaults, {args.runs} runs: {bench_log_burst(args.burst, args.runs, emulator)}")
        try:
            import onecollector_tel as tel

            if not tel._native.has("tel_client_new"):
                raise ImportError(f"the library {tel.version()} has no clients (ABI 1.1)")
            print(f"\nOpenTelemetry burst of {args.burst} records, SDK defaults, {args.runs} runs (per emit median / p99 / mean):")
            for label, release_gil in (("exporter, GIL kept", False), ("exporter through CDLL (old)", True)):
                figure, note = bench_burst(args.burst, args.runs, emulator, release_gil)
                print(f"  {label:<36} {figure}   {note}")
        except ImportError as e:
            print(f"OpenTelemetry burst not measured: {e}", file=sys.stderr)
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
