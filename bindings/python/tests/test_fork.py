"""A child made by os.fork() neither hangs nor touches the parent's session."""

from __future__ import annotations

import os
import sys
import warnings

import pytest
from support import IKEY, assert_clean_exit, run_python

import onecollector_tel as tel

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(body) -> int:
    """Runs `body()` in a forked child; its exit status is 0 if `body` returned, 1 if it
    raised. The child never returns into pytest."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python 3.12+
        pid = os.fork()
    if pid == 0:
        status = 1
        try:
            body()
            status = 0
        except BaseException as e:  # noqa: BLE001
            sys.stderr.write(f"child failed: {e!r}\n")
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_logging_flushing_and_shutting_down_in_the_child_are_no_ops(start, emulator):
    start(flush_interval_ms=600_000)
    tel.log("ParentBefore")

    def child() -> None:
        tel.log("ChildEvent", x=1)  # dropped, no exception
        tel.flush(timeout=1)
        tel.shutdown(timeout=1)  # ends nothing of the parent's
        with pytest.raises(tel.NotInitializedError):
            tel.log("ChildAfterShutdown")  # the child has let go of the session: now an error

    assert _in_child(child) == 0
    tel.log("ParentAfter")
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["ParentBefore", "ParentAfter"]
    assert tel.stats()["logged"] == 2


def test_the_child_can_start_a_session_of_its_own(start, emulator, tmp_path):
    start(flush_interval_ms=600_000)
    tel.log("ParentEvent")

    def child() -> None:
        tel.init(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "child.cache", flush_interval_ms=10)
        tel.log("ChildEvent")
        tel.flush()
        tel.shutdown()

    assert _in_child(child) == 0
    emulator.wait(accepted=1)
    assert [e["name"] for e in emulator.accepted()] == ["ChildEvent"]
    tel.flush()
    assert [e["name"] for e in emulator.accepted()] == ["ChildEvent", "ParentEvent"]


def test_a_child_that_exits_normally_leaves_the_parent_session_alone(emulator, cache_path):
    # The child ends through the interpreter's normal exit, so the package's exit hook runs
    # there too; it must not shut down or flush the parent's session.
    result = run_python(
        f"""
    import os, sys
    import onecollector_tel as tel
    tel.init({IKEY!r}, endpoint={emulator.endpoint!r}, cache_path={str(cache_path)!r}, flush_interval_ms=600000)
    tel.log("ParentBefore")
    pid = os.fork()
    if pid == 0:
        tel.log("ChildEvent")
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tel.log("ParentAfter")
    tel.flush()
    tel.shutdown()
    assert tel.stats()["sent"] == 2, tel.stats()
    """
    )
    assert_clean_exit(result)
    assert [e["name"] for e in emulator.accepted()] == ["ParentBefore", "ParentAfter"]


@pytest.mark.skipif(not tel._native.has("tel_client_new"), reason="the library predates ABI 1.1 clients")
def test_a_client_made_in_the_parent_does_nothing_in_the_child(emulator, tmp_path):
    client = tel.Client(IKEY, endpoint=emulator.endpoint, cache_path=tmp_path / "c.cache", flush_interval_ms=600_000)
    try:
        client.log("ParentBefore")

        def child() -> None:
            client.log("ChildEvent")  # dropped, no exception
            client.log_event("ChildEvent")
            client.flush(timeout=1)
            client.close(timeout=1)  # frees nothing of the parent's
            assert client.closed

        assert _in_child(child) == 0
        client.log("ParentAfter")
        client.flush()
        assert [e["name"] for e in emulator.accepted()] == ["ParentBefore", "ParentAfter"]
        assert client.stats()["logged"] == 2
    finally:
        client.close()
