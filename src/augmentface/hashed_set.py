"""A set of strings held as 8-byte hashes: membership for millions of names in flat memory.

A Python set of 2.8 million file names (Aff-Wild2's frames in the flat layout) costs about
250 MB; the same names as sorted 63-bit hashes cost 22 MB. New names wait in a small Python set
and are merged into the sorted array :data:`MERGE_EVERY` at a time, so adding stays O(1)
amortised and a lookup is one set probe and one binary search.

Two names with the same hash are taken for one (probability about n² / 2⁶⁴: 4e-7 for 2.8
million names), so a caller must only use a false "present" where it is harmless: an extra
``_1`` in a file name, an earlier run's file left in place.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["MERGE_EVERY", "HashedSet", "name_hash"]

#: Pending names merged into the sorted array at a time (a merge costs O(n)).
MERGE_EVERY = 65_536


def name_hash(name: str) -> int:
    """A stable 63-bit hash of ``name`` (blake2b), the same in every process and run; manifest
    keys are hashed with it too (:func:`augmentface.manifest_index.key_hash`). A name that is
    not valid UTF-8 (a file name's undecodable bytes, escaped) hashes its original bytes."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class HashedSet:
    """Strings added and looked up by their :func:`name_hash`, 8 bytes each once merged."""

    def __init__(self) -> None:
        self._sorted = np.zeros(0, dtype=np.int64)
        self._pending: set[int] = set()

    def add(self, name: str) -> None:
        """Add ``name`` (a no-op when present)."""
        self._pending.add(name_hash(name))
        if len(self._pending) >= MERGE_EVERY:
            self._merge()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        h = name_hash(name)
        if h in self._pending:
            return True
        i = int(np.searchsorted(self._sorted, h))
        return i < len(self._sorted) and int(self._sorted[i]) == h

    def __len__(self) -> int:
        self._merge()
        return len(self._sorted)

    def _merge(self) -> None:
        if self._pending:
            pending = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
            self._sorted = np.union1d(self._sorted, pending)
            self._pending.clear()
