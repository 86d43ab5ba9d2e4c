"""Builds the wheel: compiles the Rust library and bundles it inside the package.

setuptools-rust runs ``cargo rustc --lib --crate-type cdylib`` on the crate at
``../../Cargo.toml`` (the release profile, quicker to build than the ``dist`` one of the
published wheels; ``CARGO_TARGET_DIR`` is honoured, as cargo reads it) and
the result is placed in the package as ``onecollector_tel/libtel.so`` (``libtel.dylib`` on
macOS, ``tel.dll`` on Windows), the name ``_native.py`` loads with ctypes. The wheel is tagged
``py3-none-<platform>``: ctypes needs no Python ABI, so one wheel serves every Python 3. The
package version is the crate's.

Building needs the repository checkout (the crate lives two levels up), so build wheels, not
source distributions. The repository's ``LICENSE`` is copied beside this file first, where
``license-files`` in pyproject.toml takes it from into the wheel's ``.dist-info/licenses/``.

``build-wheels.sh`` builds the published wheels another way: it compiles the library once
(shared with the other packagings) and sets ``TEL_BUNDLE_LIBRARY`` to that file (``libtel.so``
or ``tel.dll``), which is bundled as it is, with no compilation here, and
``TEL_WHEEL_PLATFORM`` to the wheel's platform tag (``win_amd64`` for a cross-built
``tel.dll``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
CRATE_MANIFEST = HERE.parent.parent / "Cargo.toml"
#: The licence text, the same for the crate, the wheels and the NuGet package.
REPO_LICENSE = HERE.parent.parent / "LICENSE"
#: A library built beforehand, bundled as it is (see build-wheels.sh).
BUNDLE = os.environ.get("TEL_BUNDLE_LIBRARY")
#: The wheel's platform tag, for a library built for another platform.
PLATFORM = os.environ.get("TEL_WHEEL_PLATFORM")
LIBRARY_NAMES = ("libtel.so", "libtel.dylib", "tel.dll")


def library_filename() -> str:
    if sys.platform == "win32":
        return "tel.dll"
    if sys.platform == "darwin":
        return "libtel.dylib"
    return "libtel.so"


def crate_version() -> str:
    """The version of the package `onecollector-tel` in Cargo.toml (or its workspace's)."""
    if not CRATE_MANIFEST.is_file():
        raise SystemExit(
            f"cannot find the onecollector-tel crate at {CRATE_MANIFEST}: build this package from "
            "a checkout of the repository (bindings/python), not from a source distribution"
        )
    manifest = tomllib.loads(CRATE_MANIFEST.read_text(encoding="utf-8"))
    version = manifest["package"]["version"]
    if isinstance(version, dict) and version.get("workspace"):
        version = manifest["workspace"]["package"]["version"]
    return str(version)


def copy_license() -> None:
    """Puts the repository's LICENSE beside this file, for ``license-files`` (pyproject.toml)."""
    if not REPO_LICENSE.is_file():
        raise SystemExit(
            f"cannot find the licence text at {REPO_LICENSE}: build this package from a checkout of "
            "the repository (bindings/python)"
        )
    target = HERE / "LICENSE"
    if not target.is_file() or target.read_bytes() != REPO_LICENSE.read_bytes():
        shutil.copyfile(REPO_LICENSE, target)


copy_license()


class bdist_wheel_any_python(bdist_wheel):
    """A platform wheel for any Python 3: the library is loaded with ctypes, not imported."""

    def finalize_options(self) -> None:
        if PLATFORM:
            self.plat_name = PLATFORM
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


if BUNDLE:
    bundle = Path(BUNDLE).resolve()
    if bundle.name not in LIBRARY_NAMES or not bundle.is_file():
        raise SystemExit(f"TEL_BUNDLE_LIBRARY must name a built {' or '.join(LIBRARY_NAMES)}, not {BUNDLE!r}")

    class build_py_with_library(build_py):
        """Copies the prebuilt library into the package."""

        def run(self) -> None:
            super().run()
            shutil.copy2(bundle, Path(self.build_lib) / "onecollector_tel" / bundle.name)

    class BinaryDistribution(Distribution):
        def has_ext_modules(self) -> bool:
            return True

    setup(
        version=crate_version(),
        distclass=BinaryDistribution,
        cmdclass={"build_py": build_py_with_library, "bdist_wheel": bdist_wheel_any_python},
    )
else:
    from setuptools_rust import Binding, RustExtension, build_rust

    class build_rust_library(build_rust):
        """Places the cdylib under the plain name ctypes loads, not a Python extension's name."""

        def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
            extension_path = super().get_dylib_ext_path(ext, target_fname)
            return os.path.join(os.path.dirname(extension_path), library_filename())

    setup(
        version=crate_version(),
        rust_extensions=[
            RustExtension(
                "onecollector_tel.libtel",
                path=str(CRATE_MANIFEST),
                binding=Binding.NoBinding,
                py_limited_api=False,
            )
        ],
        cmdclass={"build_rust": build_rust_library, "bdist_wheel": bdist_wheel_any_python},
    )
