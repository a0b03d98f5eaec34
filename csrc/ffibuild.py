"""Generate the cffi (API mode) C source of the extension ``s2sim._core`` from csrc/s2sim.h.

CMake runs this at build time: ``python ffibuild.py <header> <out.c>``. The cdef is the text between the
CFFI_BEGIN / CFFI_END markers of the header, so the ABI is written exactly once.
"""
import re
import sys
from pathlib import Path

import cffi


def cdef_from_header(header: Path) -> str:
    text = header.read_text()
    match = re.search(r"/\* CFFI_BEGIN \*/(.*)/\* CFFI_END \*/", text, re.S)
    if not match:
        raise SystemExit(f"{header}: no CFFI_BEGIN / CFFI_END block")
    return match.group(1)


def main(header: str, out: str) -> None:
    ffi = cffi.FFI()
    ffi.cdef(cdef_from_header(Path(header)))
    ffi.set_source("s2sim._core", '#include "s2sim.h"')
    ffi.emit_c_code(out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
