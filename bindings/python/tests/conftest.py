"""Fixtures: one `telctl serve` for the run, reset before every test, and a session per test
with its own cache file, always shut down afterwards."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import FAST, IKEY, Emulator  # noqa: E402

# Before the package is imported or any session starts: nothing of the run may land in the
# user's cache folder, and the environment of the machine must not opt the tests out.
_CACHE_DIR = tempfile.mkdtemp(prefix="tel-pytest-cache-")
os.environ["TEL_CACHE_DIR"] = _CACHE_DIR
for _name in ("TEL_DISABLE", "DO_NOT_TRACK", "TEL_LOG"):
    os.environ.pop(_name, None)

import onecollector_tel as tel  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def _telctl() -> Iterator[Emulator]:
    emulator = Emulator()
    yield emulator
    emulator.close()


@pytest.fixture
def emulator(_telctl: Emulator) -> Iterator[Emulator]:
    _telctl.release()
    _telctl.reset()
    yield _telctl
    _telctl.release()
    _telctl.reset()


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "tel.cache"


@pytest.fixture(autouse=True)
def _no_session_left() -> Iterator[None]:
    """Whatever a test does, no session outlives it."""
    yield
    try:
        tel.shutdown(timeout=2)
    except tel.TelemetryTimeoutError:
        pass


@pytest.fixture
def start(emulator: Emulator, cache_path: Path) -> Iterator[Callable[..., None]]:
    """`start(**options)` begins a session against the emulator with a fresh cache file and
    quick timings; the session is shut down after the test."""

    def _start(**options: Any) -> None:
        config: Dict[str, Any] = dict(FAST, endpoint=emulator.endpoint, cache_path=cache_path)
        config.update(options)
        ikey = config.pop("ikey", IKEY)
        tel.init(ikey, **config)

    yield _start
    try:
        tel.shutdown(timeout=2)
    except tel.TelemetryTimeoutError:
        pass



@pytest.fixture
def make_client(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., "tel.Client"]]:
    """`make_client(ikey=IKEY, **options)` starts a `Client` against the emulator with quick
    timings and a cache folder of its own (the consent record and the device id live beside the
    cache file); every client made is closed after the test."""
    made = []

    def _make(ikey: str = IKEY, **options: Any) -> tel.Client:
        config: Dict[str, Any] = dict(FAST, endpoint=emulator.endpoint, cache_path=tmp_path / f"client{len(made)}" / "tel.cache")
        config.update(options)
        client = tel.Client(ikey, **config)
        made.append(client)
        return client

    yield _make
    for client in made:
        try:
            client.close(2)
        except tel.TelemetryTimeoutError:
            pass


@pytest.fixture
def emulator_takes_dt_ex(emulator: Emulator) -> Emulator:
    """The emulator, when it accepts the per-event `ext.dt` and `ext.ex` of protocol.md (an
    older build refuses them as undocumented); the test is skipped otherwise."""
    if not _judged_dt_ex:
        client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=None, flush_interval_ms=10)
        try:
            client.log_event(
                "ProbeDtEx",
                ext={"dt": {"traceId": "0" * 31 + "1", "spanId": "0" * 15 + "1", "traceFlags": 1}, "ex": {"type": "E"}},
            )
            client.flush()
            _judged_dt_ex.append(client.stats()["sent"] == 1)
        finally:
            client.close()
        emulator.reset()
    if not _judged_dt_ex[0]:
        pytest.skip("this build of telctl refuses ext.dt / ext.ex (protocol.md allows them per event)")
    return emulator


_judged_dt_ex: list = []
