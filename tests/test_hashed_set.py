"""HashedSet: the same answers as a Python set, across merges, in 8 bytes a name."""

from __future__ import annotations

import tracemalloc

import numpy as np

from augmentface import hashed_set
from augmentface.hashed_set import HashedSet, name_hash


def test_same_membership_as_a_set_across_merges(monkeypatch):
    monkeypatch.setattr(hashed_set, "MERGE_EVERY", 97)  # many merges, pending names between
    rng = np.random.default_rng(4)
    names = [f"frame_{n}.jpg" for n in rng.integers(0, 5_000, size=3_000)]
    names += ["", "é.png", "bad\udcff.jpg"]  # empty, non-ASCII, a non-UTF-8 byte (escaped)
    hashed, plain = HashedSet(), set()
    for name in names:
        hashed.add(name)
        plain.add(name)
        assert name in hashed
    probes = [f"frame_{n}.jpg" for n in range(5_000)] + ["", "é.png", "x", "bad\udcff.jpg"]
    assert [p in hashed for p in probes] == [p in plain for p in probes]
    assert len(hashed) == len(plain)
    assert 3 not in hashed and None not in hashed


def test_hash_is_stable_and_63_bit():
    assert name_hash("00001.png") == name_hash("00001.png") != name_hash("00002.png")
    assert 0 <= name_hash("x" * 1000) < 2**63
    assert name_hash("a") == 2340832890917691671  # fixed across processes and runs


def test_memory_per_name_is_a_few_bytes(monkeypatch):
    monkeypatch.setattr(hashed_set, "MERGE_EVERY", 1_024)
    names = [f"subject{n // 1000:04d}_frame{n:07d}.jpg" for n in range(200_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        hashed = HashedSet()
        for name in names:
            hashed.add(name)
        len(hashed)  # merged
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 8 bytes a name in the sorted array (a Python set of these names holds ~120)
    assert held / len(names) <= 10, held / len(names)
