"""What the tests share: the key they use, quick timings, the conservation check, and a client
of `telctl serve` (the local OneCollector emulator) and its control API."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]

#: A full key: tenant token "abc", so the envelope iKey is "o:abc".
IKEY = "abc-0123456789abcdef-0123456789abcdef"
TENANT = "abc"

#: Keeps batching and retries quick; every test can override.
FAST: Dict[str, Any] = dict(
    flush_interval_ms=50,
    retry_initial_ms=20,
    retry_max_ms=100,
    retry_max_attempts=3,
    http_timeout_ms=3000,
)


def assert_conserved(stats: Dict[str, Any]) -> None:
    """abi.md's conservation law, checked at a quiet point (after a flush or a shutdown)."""
    came = stats["logged"] + stats["replayed"]
    went = (
        stats["sent"]
        + stats["rejected"]
        + stats["dropped_killed"]
        + stats["dropped_shutdown"]
        + stats.get("dropped_evicted", 0)  # 0.2.0
        + stats.get("dropped_consent", 0)  # 0.3.0
        + stats.get("dropped_sampled", 0)  # 0.3.0
        + stats["persisted"]
        + stats["pending"]
    )
    assert came == went, stats


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def telctl_path() -> Path:
    """`TELCTL`, else the debug build in the cargo target folder."""
    return Path(os.environ.get("TELCTL") or target_dir() / "debug" / "telctl")


class Emulator:
    """One `telctl serve` process. Its control API shares the collector's port."""

    def __init__(self, *extra_args: str) -> None:
        telctl = telctl_path()
        if not telctl.is_file():
            raise RuntimeError(f"{telctl} not found: run `cargo build -p telctl`, or set TELCTL")
        # stderr goes to a file, read back when the emulator stops answering.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [str(telctl), "serve", "--quiet", "--exit-on-stdin-eof", *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        prefix = "listening on "
        if not first.startswith(prefix):
            self.close()
            raise RuntimeError(f"telctl serve did not start: {first!r} {self.stderr_tail()}")
        #: The collector URL to give the library.
        self.endpoint = first[len(prefix) :]
        self.base = self.endpoint.split("/OneCollector/")[0]

    def close(self) -> None:
        # Closing stdin makes --exit-on-stdin-eof end the process.
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-4000:]

    def _call(self, method: str, action: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None and method == "GET" else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}/_emulator/{action}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.URLError as e:
            raise RuntimeError(
                f"the emulator did not answer {method} {action}: {e}; "
                f"telctl exit status {self.process.poll()}; its stderr: {self.stderr_tail()!r}"
            ) from e

    def script(self, *answers: Dict[str, Any]) -> None:
        """Queues answers for the next requests (see the control API's form)."""
        self._call("POST", "script", list(answers))

    def default(self, answer: Optional[Dict[str, Any]]) -> None:
        """The answer used while the script is empty; None: normal judgement."""
        self._call("POST", "default", answer)

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def release(self) -> None:
        """Ends every hang in progress."""
        self._call("POST", "release", {})

    def accepted(self) -> List[Dict[str, Any]]:
        return self._call("GET", "accepted")

    def requests(self) -> List[Dict[str, Any]]:
        return self._call("GET", "requests")

    def wait(self, accepted: int = 0, requests: int = 0, timeout: float = 20.0) -> Dict[str, Any]:
        """Waits until at least `accepted` envelopes and `requests` requests were recorded;
        fails the test if that does not happen within `timeout` seconds."""
        ms = int(timeout * 1000)
        result = self._call(
            "GET", f"wait?accepted={accepted}&requests={requests}&timeout_ms={ms}", timeout=timeout + 30
        )
        assert result["ok"], f"emulator wait for accepted={accepted} requests={requests} timed out: {result}"
        return result


def run_python(code: str, timeout: float = 60, **env: str) -> "subprocess.CompletedProcess[str]":
    """Runs `code` in a new interpreter (this one's, with this environment plus `env`).

    `timeout` only turns a hang into a failure; nothing is measured."""
    import sys
    import textwrap

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_clean_exit(result: "subprocess.CompletedProcess[str]") -> None:
    """Exit status 0 and nothing on stderr that says the interpreter or a thread broke."""
    assert result.returncode == 0, result.stderr
    for sign in ("Fatal Python error", "Traceback", "Exception ignored", "Segmentation fault", "panicked"):
        assert sign not in result.stderr, result.stderr
