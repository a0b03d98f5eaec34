"""Generate the cffi (API mode) C source of the extension ``s2sim._core`` from the core's headers.

CMake runs this at build time: ``python ffibuild.py <out.c> <header> [<header> ...]`` (csrc/s2sim.h, the
simulator's ABI, and csrc/chip_neuron.h, the QAT neuron loop). The cdef is the text between the CFFI_BEGIN /
CFFI_END markers of each header, so the ABI is written exactly once.
"""

import re
import sys
from pathlib import Path

import cffi


def cdef_from_header(header: Path) -> str:
    """Return the cdef text between the CFFI_BEGIN / CFFI_END markers of ``header``."""
    text = header.read_text()
    match = re.search(r"/\* CFFI_BEGIN \*/(.*)/\* CFFI_END \*/", text, re.S)
    if not match:
        raise SystemExit(f"{header}: no CFFI_BEGIN / CFFI_END block")
    return match.group(1)


def main(out: str, *headers: str) -> None:
    """Write the C source of ``s2sim._core`` for ``headers`` to ``out``."""
    ffi = cffi.FFI()
    ffi.cdef("\n".join(cdef_from_header(Path(h)) for h in headers))
    ffi.set_source("s2sim._core", "\n".join(f'#include "{Path(h).name}"' for h in headers))
    ffi.emit_c_code(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
