"""Smoke test of an installed wheel, run in a fresh virtual environment without the Rust
toolchain: the bundled library loads, and an event reaches `telctl serve`.

    python tests/wheel_smoke.py      (TELCTL may name the emulator binary)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import IKEY, Emulator  # noqa: E402


def main() -> int:
    if os.environ.get("TEL_LIBRARY"):
        print("wheel smoke test: unset TEL_LIBRARY, the bundled library is what is tested", file=sys.stderr)
        return 2
    cache_dir = tempfile.mkdtemp(prefix="tel-smoke-")
    os.environ["TEL_CACHE_DIR"] = cache_dir
    for name in ("TEL_DISABLE", "DO_NOT_TRACK"):
        os.environ.pop(name, None)

    import onecollector_tel as tel

    package_dir = Path(tel.__file__).resolve().parent
    assert tel.LIBRARY_PATH.parent == package_dir, tel.LIBRARY_PATH
    assert "site-packages" in str(package_dir), f"not the installed package: {package_dir}"
    assert tel.__version__ == tel.version(), (tel.__version__, tel.version())
    assert (package_dir / "py.typed").is_file()

    emulator = Emulator()
    try:
        with tel.session(IKEY, endpoint=emulator.endpoint, cache_path=Path(cache_dir) / "smoke.cache"):
            tel.log("WheelSmokeTest", python=sys.version.split()[0], nested={"ok": [1, 2, 3]})
            tel.flush()
        accepted = emulator.accepted()
        assert [e["name"] for e in accepted] == ["WheelSmokeTest"], accepted
        assert accepted[0]["data"]["nested"] == {"ok": [1, 2, 3]}
    finally:
        emulator.close()

    try:
        import onecollector_tel.otel  # noqa: F401
    except ImportError as e:
        assert "onecollector-tel[otel]" in str(e), e
        otel = "not installed (the error names the extra)"
    else:
        otel = "importable"

    print(f"wheel smoke test: ok (onecollector-tel {tel.__version__}, library {tel.LIBRARY_PATH}, otel adapter {otel})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
