"""Every seed mkdata derives, in one place (render side and benchmark side).

Names enter seeds through ``name_code`` (CRC-32 of the UTF-8 text: stable across runs, machines
and Python versions, unlike ``hash``). Random streams are ``numpy.random.SeedSequence``s built
from integers, so a stream depends only on what it is derived from.
"""

from __future__ import annotations

import zlib

import numpy as np

INT31 = 0x7FFFFFFF


def name_code(text: str) -> int:
    """A stable 32-bit code of ``text``."""
    return zlib.crc32(text.encode())


def seed_sequence(*parts: int | str) -> np.random.SeedSequence:
    """The seed sequence of ``parts`` (names through ``name_code``)."""
    return np.random.SeedSequence([name_code(part) if isinstance(part, str) else part for part in parts])


def int31_seed(text: str) -> int:
    """A non-negative 31-bit seed from ``text`` (for engines that take an int, e.g. Cycles)."""
    return name_code(text) & INT31
