"""The symbols an ELF64 relocatable object defines and the ones it needs from elsewhere.

The JIT (runtime/loader.py) links compiled objects in memory; an external symbol that nothing
provides would be bound to address 0 and crash the process at its first call (seen when a target
without F16C left `__extendhfsf2` undefined). The loader checks every needed symbol first, with this
reader: only the section headers and the symbol table are read, and every offset is bounds-checked
(a cache entry is data, not trusted code).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

SHT_SYMTAB = 2
STB_WEAK = 2


class ElfError(ValueError):
    """The bytes are not a well-formed little-endian ELF64 object."""


@dataclass(frozen=True)
class Symbols:
    defined: frozenset[str]
    needed: frozenset[str]  # undefined, non-weak: must be provided by another object or the process


def _unpack(fmt: str, data: bytes, off: int) -> tuple:
    size = struct.calcsize(fmt)
    if off < 0 or off + size > len(data):
        raise ElfError(f"truncated object: {size} bytes wanted at offset {off} of {len(data)}")
    return struct.unpack_from(fmt, data, off)


def _name(strtab: bytes, off: int) -> str:
    if off >= len(strtab):
        raise ElfError(f"symbol name offset {off} outside the string table ({len(strtab)} bytes)")
    end = strtab.find(b"\0", off)
    return strtab[off:end if end >= 0 else len(strtab)].decode("latin-1")


def symbols(data: bytes) -> Symbols:
    if data[:4] != b"\x7fELF" or len(data) < 64 or data[4] != 2 or data[5] != 1:
        raise ElfError("not a little-endian ELF64 object")
    shoff, = _unpack("<Q", data, 0x28)
    shentsize, shnum = _unpack("<HH", data, 0x3A)
    if shentsize != 64:
        raise ElfError(f"unexpected section header size {shentsize}")
    sections = [_unpack("<IIQQQQIIQQ", data, shoff + k * 64) for k in range(shnum)]
    defined: set[str] = set()
    needed: set[str] = set()
    for _, sh_type, _, _, off, size, link, _, _, entsize in sections:
        if sh_type != SHT_SYMTAB:
            continue
        if entsize != 24 or link >= len(sections):
            raise ElfError("malformed symbol table header")
        str_off, str_size = sections[link][4], sections[link][5]
        if str_off + str_size > len(data) or off + size > len(data):
            raise ElfError("symbol or string table outside the object")
        strtab = data[str_off:str_off + str_size]
        for k in range(1, size // 24):  # entry 0 is the null symbol
            st_name, st_info, _, st_shndx, _, _ = _unpack("<IBBHQQ", data, off + 24 * k)
            name = _name(strtab, st_name)
            if not name or (st_info >> 4) == 0:  # local symbols never cross objects
                continue
            if st_shndx != 0:
                defined.add(name)
            elif (st_info >> 4) != STB_WEAK:
                needed.add(name)
    return Symbols(frozenset(defined), frozenset(needed))
