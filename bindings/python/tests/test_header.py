"""The ctypes declarations of ``_native`` against ``include/tel.h``: every function of the
header is declared, with the argument and result types its prototype gives, and nothing else
is; the callback types and the constants match too. A prototype that drifts from the header
makes ctypes pass or read the wrong width silently, so this is checked on text, not by calling."""

from __future__ import annotations

import ctypes
import re
from typing import Any, Dict, List, Tuple

import pytest
from support import REPO

from onecollector_tel import _native

HEADER = REPO / "include" / "tel.h"

#: C type (spaces normalised) -> the ctypes type that passes it.
_CTYPES: Dict[str, Any] = {
    "tel_status": ctypes.c_int32,
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "size_t": ctypes.c_size_t,
    "const char *": ctypes.c_char_p,
    "char *": ctypes.c_char_p,
    "void *": ctypes.c_void_p,
    "tel_client *": ctypes.c_void_p,
    "tel_client **": ctypes.POINTER(ctypes.c_void_p),
    "tel_log_fn": _native.LOG_FN,
    "tel_delivery_fn": _native.DELIVERY_FN,
    "void": None,
}

_PROTOTYPE = re.compile(r"^([A-Za-z_][\w ]*?\s*\**)\s*\b(tel_\w+)\s*\(([^)]*)\)\s*;", re.MULTILINE)
_TYPEDEF_FN = re.compile(r"^typedef\s+([\w ]+?\s*\**)\s*\(\*\s*(tel_\w+)\)\s*\(([^)]*)\)\s*;", re.MULTILINE)
_DEFINE = re.compile(r"^#define\s+(TEL_(?:OK|ERR_\w+|LOG_\w+|CONSENT_\w+))\s+(-?\d+)\s*$", re.MULTILINE)


def _header_text() -> str:
    # Comments go first: their prose may hold parentheses and semicolons.
    text = HEADER.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", " ", text)


def _c_type(text: str) -> str:
    """A type as written, spaces normalised: ``const char*`` -> ``const char *``."""
    text = re.sub(r"\s*(\*+)\s*", r" \1", text.strip())
    return re.sub(r"\s+", " ", text).strip()


def _parameter_type(parameter: str) -> str:
    """The type of one parameter, its name dropped: ``const char *name`` -> ``const char *``."""
    parameter = parameter.strip()
    if parameter == "void":
        return "void"
    match = re.fullmatch(r"(.*?[\s*])(\w+)", parameter)
    assert match, f"cannot read the parameter {parameter!r} of include/tel.h"
    return _c_type(match.group(1))


def _ctype(c_type: str, where: str) -> Any:
    assert c_type in _CTYPES, f"{where}: the C type {c_type!r} has no ctypes mapping in this test"
    return _CTYPES[c_type]


def _prototypes(pattern: "re.Pattern[str]") -> Dict[str, Tuple[List[Any], Any]]:
    found: Dict[str, Tuple[List[Any], Any]] = {}
    for match in pattern.finditer(_header_text()):
        result, name, parameters = match.groups()
        where = f"include/tel.h, {name}"
        restype = _ctype(_c_type(result), where)
        types = [_parameter_type(p) for p in parameters.split(",")] if parameters.strip() else ["void"]
        argtypes = [] if types == ["void"] else [_ctype(t, where) for t in types]
        assert name not in found, f"{where} is declared twice"
        found[name] = (argtypes, restype)
    return found


def test_the_parser_reads_the_header():
    functions = _prototypes(_PROTOTYPE)
    # A parser that finds nothing would pass every comparison below.
    assert {"tel_init", "tel_log", "tel_version", "tel_client_new", "tel_purge"} <= set(functions)
    assert functions["tel_client_new"] == ([ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)], ctypes.c_int32)
    assert functions["tel_version"] == ([], ctypes.c_char_p)
    assert functions["tel_stats_json"] == ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t)


#: The functions of ABI 1.2 (0.3.0). The binding declares them for a library that has them
#: and checks `_native.has` before calling one, so they may run ahead of a header older than
#: 1.2, and only then.
ABI_1_2 = {
    "tel_set_consent",
    "tel_consent",
    "tel_client_set_consent",
    "tel_client_consent",
    "tel_set_property",
    "tel_client_set_property",
    "tel_pause",
    "tel_resume",
    "tel_client_pause",
    "tel_client_resume",
}


def test_every_function_of_the_header_is_declared_as_the_header_declares_it():
    header = _prototypes(_PROTOTYPE)
    declared = dict(_native._SIGNATURES)
    assert sorted(set(header) - set(declared)) == [], "functions of include/tel.h that _native does not declare"
    ahead = set(declared) - set(header)
    if "TEL_HAS_ABI_1_2" in _header_text():
        assert sorted(ahead) == [], "functions _native declares that include/tel.h does not have"
    else:
        assert ahead == ABI_1_2, "functions _native declares that include/tel.h (before ABI 1.2) does not have"
        for name in ahead:
            declared.pop(name)
    wrong = {
        name: {"header": header[name], "ctypes": (list(argtypes), restype)}
        for name, (argtypes, restype) in declared.items()
        if (list(argtypes), restype) != header[name]
    }
    assert wrong == {}, "ctypes prototypes that differ from include/tel.h"


def test_the_loaded_library_has_the_prototypes_it_exports():
    # _declare sets them on both handles; a function the library exports must carry them.
    for name, (argtypes, restype) in _native._SIGNATURES.items():
        if not _native.has(name):
            continue
        for handle in (_native.lib, _native.nolock):
            function = getattr(handle, name)
            assert list(function.argtypes) == list(argtypes), name
            assert function.restype == restype, name


@pytest.mark.parametrize(
    "typedef, ctypes_type", [("tel_log_fn", _native.LOG_FN), ("tel_delivery_fn", _native.DELIVERY_FN)]
)
def test_the_callback_types_match_their_typedefs(typedef, ctypes_type):
    typedefs = _prototypes(_TYPEDEF_FN)
    assert typedef in typedefs, f"include/tel.h has no typedef {typedef}"
    argtypes, restype = typedefs[typedef]
    assert list(ctypes_type._argtypes_) == argtypes
    assert ctypes_type._restype_ == restype


def test_the_constants_match_the_header():
    defines = {name: int(value) for name, value in _DEFINE.findall(_header_text())}
    assert "TEL_ERR_NOT_DURABLE" in defines and "TEL_LOG_TRACE" in defines
    mismatched = {
        name: (value, getattr(_native, name, None)) for name, value in defines.items() if getattr(_native, name, None) != value
    }
    assert mismatched == {}, "constants of include/tel.h that _native lacks or gives another value"
