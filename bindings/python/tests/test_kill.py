"""The collector's kill directive (`kill-tokens` + `kill-duration`), through the binding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import TENANT, assert_conserved

import onecollector_tel as tel


def _kill_answer(tokens: str = f"o:{TENANT}:all", duration: str | None = "86400") -> dict:
    """A 401 as OneCollector sends it to a tenant it stops."""
    headers = {"Collector-Error": "Invalid Tenant Token.", "kill-tokens": tokens}
    if duration is not None:
        headers["kill-duration"] = duration
    return {"status": 401, "headers": headers, "body": '{"acc":0,"efi":{"InvalidTenantToken":"all"}}'}


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_a_kill_is_recorded_in_memory_and_beside_the_cache_file(start, emulator, cache_path: Path):
    emulator.script(_kill_answer())
    start()
    before = _now_ms()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    stats = tel.stats()
    assert stats["killed_until_ms"] > before
    kill_file = Path(f"{cache_path}.kill")
    assert kill_file.is_file()
    state = json.loads(kill_file.read_text())
    assert state["tenant"] == TENANT
    assert state["until_ms"] == stats["killed_until_ms"]


@pytest.mark.parametrize(
    "tokens,killed",
    [
        (f"o:{TENANT}:all", True),
        (f"o:{TENANT}", True),
        (f"o:{TENANT}:all,o:def:event_x", True),
        (f"  o:def  ,  o:{TENANT}  ", True),
        (f"garbage,o:{TENANT}:all", True),
        (f"o:{TENANT}:WinMLCLIAction", True),
        ("o::all", False),
        (f"{TENANT}", False),
        ("o:other:all", False),
        ("", False),
    ],
)
def test_kill_tokens_parsing_and_other_tenants(start, emulator, tokens, killed):
    # Accepted, so the event is resolved either way; only the directive differs.
    emulator.script({"accept": True, "headers": {"kill-tokens": tokens, "kill-duration": "60"}})
    start()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    assert tel.stats()["sent"] == 1
    assert (tel.stats()["killed_until_ms"] > 0) is killed


def test_nothing_is_posted_during_the_window(start, emulator):
    emulator.script(_kill_answer())
    start()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    assert len(emulator.requests()) == 1
    for _ in range(3):
        tel.log("WinMLCLIAction")  # dropped, yet no error: a kill is not the caller's fault
    tel.flush()
    tel.shutdown()
    assert len(emulator.requests()) == 1
    stats = tel.stats()
    assert stats["dropped_killed"] == 4
    assert_conserved(stats)


def test_a_killed_batch_is_dropped_not_cached(start, emulator):
    emulator.script(_kill_answer())
    start(flush_interval_ms=600_000)
    tel.log("FirstEvent")
    tel.log("SecondEvent")
    tel.flush()
    tel.shutdown()
    stats = tel.stats()
    assert stats["dropped_killed"] == 2 and stats["persisted"] == 0
    assert_conserved(stats)

    # The next process within the window replays nothing and sends nothing.
    start()
    tel.log("ThirdEvent")
    tel.flush()
    stats = tel.stats()
    assert stats["replayed"] == 0 and stats["killed_until_ms"] > 0
    assert stats["dropped_killed"] == 1
    assert len(emulator.requests()) == 1


def test_sending_resumes_when_the_window_expires(start, emulator):
    emulator.script(_kill_answer(duration="1"))
    start()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    until = tel.stats()["killed_until_ms"]
    assert until > 0
    # The behaviour under test is the passing of wall-clock time: wait until the window ends.
    while _now_ms() <= until:
        time.sleep((until - _now_ms()) / 1000 + 0.01)
    tel.log("AfterTheWindow")
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["AfterTheWindow"]
    assert tel.stats()["killed_until_ms"] == 0


@pytest.mark.parametrize("duration", [None, "", "0", "-5", "abc", "1.5"])
def test_kill_tokens_with_an_unusable_duration_are_ignored(start, emulator, duration):
    emulator.script(_kill_answer(duration=duration))
    start()
    tel.log("WinMLCLIHeartbeat")
    tel.flush()
    assert tel.stats()["killed_until_ms"] == 0
    tel.log("StillSending")
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["StillSending"]
