"""The library's log lines in the `logging` module, and a clean interpreter exit."""

from __future__ import annotations

import logging
import threading

from support import IKEY, assert_clean_exit, run_python

import onecollector_tel as tel


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_lines_reach_the_hosts_handlers_at_the_matching_level(start, emulator):
    logger = logging.getLogger(tel.LOGGER_NAME)
    handler = _Collect()
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        emulator.script({"status": 400, "headers": {"Collector-Error": "Bad request by the test"}})
        start()
        tel.log("RejectedEvent")
        tel.flush()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    by_text = {r.getMessage(): r for r in handler.records}
    about_400 = [r for m, r in by_text.items() if "HTTP 400" in m and "Bad request by the test" in m]
    # The non-2xx answer is a debug line; the decision to reject the event an info line.
    assert {r.levelno for r in about_400} == {logging.DEBUG, logging.INFO}, [r.getMessage() for r in about_400]
    assert all("rejected" in r.getMessage() for r in about_400 if r.levelno == logging.INFO)
    assert all(r.name == "onecollector_tel" for r in handler.records)
    # They come from the library's worker thread, not the caller's.
    assert all(r.thread != threading.get_ident() for r in about_400)


def test_levels_the_logger_does_not_want_are_not_emitted(start, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="onecollector_tel")
    emulator.script({"status": 400})
    start()
    tel.log("RejectedEvent")
    tel.flush()
    assert [r for r in caplog.records if r.name == "onecollector_tel"] == []


def test_a_program_that_configures_no_logging_sees_no_line_of_the_library(cache_path):
    # An offline command line: the collector cannot be reached, which the library logs at warn
    # level ("cannot reach the collector ..."). With no handler of the host's, logging's
    # last-resort handler would print it on stderr; the package's NullHandler keeps it quiet.
    result = run_python(
        f"""
    import logging, socket
    import onecollector_tel as tel
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    tel.init({IKEY!r}, endpoint=f"http://127.0.0.1:{{dead}}/OneCollector/1.0/", cache_path={str(cache_path)!r},
             retry_max_attempts=1, flush_interval_ms=0)
    tel.log("OfflineEvent")
    tel.flush(timeout=10)
    stats = tel.stats()
    tel.shutdown()
    assert stats["persisted"] == 1 and stats["http_failures"] >= 1, stats
    handlers = logging.getLogger(tel.LOGGER_NAME).handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers), handlers
    print("ok")
    """
    )
    assert_clean_exit(result)
    assert result.stdout == "ok\n"
    assert result.stderr == ""


_LOGGING_TO_STDERR = """
    import logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
"""


def test_exit_without_shutdown_delivers_within_a_short_deadline(emulator, cache_path):
    result = run_python(
        _LOGGING_TO_STDERR
        + f"""
    import onecollector_tel as tel
    tel.init({IKEY!r}, endpoint={emulator.endpoint!r}, cache_path={str(cache_path)!r}, flush_interval_ms=600000)
    for i in range(3):
        tel.log("ExitEvent", i=i)
    # no shutdown: the package's exit hook does it
    """
    )
    assert_clean_exit(result)
    assert "shut down at interpreter exit" in result.stderr
    assert [e["data"]["i"] for e in emulator.accepted()] == [0, 1, 2]


def test_exit_with_a_request_hanging_persists_and_exits_cleanly(emulator, cache_path):
    emulator.default({"fault": "hang"})
    result = run_python(
        _LOGGING_TO_STDERR
        + f"""
    import json, urllib.request
    import onecollector_tel as tel
    tel.init({IKEY!r}, endpoint={emulator.endpoint!r}, cache_path={str(cache_path)!r},
             flush_interval_ms=10, http_timeout_ms=600000)
    tel.log("HungAtExit")
    # Exit only once the request is in flight, stuck in the collector.
    with urllib.request.urlopen({emulator.base!r} + "/_emulator/wait?requests=1&timeout_ms=20000") as r:
        assert json.loads(r.read())["ok"]
    """
    )
    assert_clean_exit(result)
    assert "telemetry shutdown at interpreter exit" in result.stderr
    assert cache_path.is_file() and cache_path.stat().st_size > 0


def test_the_worker_may_wake_while_the_interpreter_finalizes(emulator, cache_path):
    # An exit hook registered before the package's runs after it: it ends the hang, so the
    # abandoned worker gets its answer (and logs) while Python is tearing down.
    emulator.default({"fault": "hang"})
    result = run_python(
        _LOGGING_TO_STDERR
        + f"""
    import atexit, json, urllib.request
    base = {emulator.base!r}
    atexit.register(lambda: urllib.request.urlopen(urllib.request.Request(base + "/_emulator/release", data=b"{{}}")).read())
    import onecollector_tel as tel
    tel.init({IKEY!r}, endpoint={emulator.endpoint!r}, cache_path={str(cache_path)!r},
             flush_interval_ms=10, http_timeout_ms=600000)
    for i in range(50):
        tel.log("Finalizing", i=i)
    with urllib.request.urlopen(base + "/_emulator/wait?requests=1&timeout_ms=20000") as r:
        assert json.loads(r.read())["ok"]
    """,
        TEL_LOG="debug",
    )
    assert_clean_exit(result)
