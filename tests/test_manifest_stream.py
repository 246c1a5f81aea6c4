"""Streaming reads of a manifest (augmentface.manifest_stream) against read_manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augmentface import manifest_stream
from augmentface.errors import MissingManifestError, UsageError
from augmentface.manifest import ManifestWriter, read_manifest
from augmentface.manifest_parts import live_parts
from augmentface.manifest_stream import ManifestStream, count_rows, iter_manifest, read_columns
from augmentface.stages.common import manifest_digest
from tests.test_manifest import PROVENANCE, RUN_FIRST, SCHEMA, make_rows, write


def _retried(path: Path, n: int = 40, every_n: int = 7) -> None:
    """Parts of ``every_n`` rows with failures, then a resumed run that redoes some rows
    (failed ones now ok, ok ones now failed, one key twice within a part): keys in several
    parts, in an order that is neither the first nor the last run's."""
    rows = make_rows(n, seed=1, failed=(2, 9, 17, 30)).to_dict("records")
    with ManifestWriter(path, SCHEMA, every_n=every_n, **PROVENANCE) as writer:
        for row in rows:
            writer.add(row)
    redo = make_rows(n, seed=2, failed=(5, 23)).to_dict("records")
    with ManifestWriter(path, SCHEMA, resume=True, every_n=3, **PROVENANCE) as writer:
        for i in (30, 2, 5, 17, 23, 9, 2, 39):
            writer.add(redo[i])


def _concat(batches: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(batches, ignore_index=True)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, rows and order; array cells equal in shape, dtype and values."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for name in want.columns:
        if SCHEMA.column(name).dtype != "array":
            pd.testing.assert_series_equal(got[name], want[name], check_dtype=True)
            continue
        for a, b in zip(got[name], want[name], strict=True):
            if b is None:
                assert a is None
            else:
                assert a.shape == b.shape and a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)


@pytest.fixture
def retried(tmp_path) -> Path:
    path = tmp_path / "m.parquet"
    _retried(path)
    return path


def test_batches_give_read_manifests_rows_arrays_and_order(retried):
    assert len(live_parts(retried)) == 6 + 3  # 40 rows by 7, then 8 by 3
    whole = read_manifest(retried, SCHEMA, run_first=RUN_FIRST).df
    for batch_rows in (1, 3, 7, 8, 40, 1000):
        batches = list(iter_manifest(retried, SCHEMA, batch_rows=batch_rows, run_first=RUN_FIRST))
        _assert_same(_concat(batches), whole)
    stream = ManifestStream(retried, SCHEMA, run_first=RUN_FIRST)
    assert len(stream) == len(whole) == 40
    assert stream.count_ok() == int((whole["status"] == "ok").sum()) == 38
    ok = _concat(list(stream.batches(batch_rows=5, ok_only=True)))
    _assert_same(ok, whole[whole["status"] == "ok"].reset_index(drop=True))
    assert stream.meta == read_manifest(retried, SCHEMA, run_first=RUN_FIRST).meta


def test_batches_hold_at_most_batch_rows_rows(retried, monkeypatch):
    """Every batch but the last is exactly ``batch_rows`` long, and the consumer that keeps
    one batch at a time never sees more: memory is bounded by the batch, not the manifest."""
    for batch_rows in (1, 4, 6, 13):
        lengths = [len(b) for b in iter_manifest(retried, SCHEMA, batch_rows=batch_rows,
                                                 run_first=RUN_FIRST)]  # fmt: skip
        assert max(lengths) <= batch_rows
        assert all(n == batch_rows for n in lengths[:-1]) and 0 < lengths[-1] <= batch_rows
        assert sum(lengths) == 40
    # Lazy: the first batch decodes at most two reads of batch_rows (the second tops it up
    # after rows of retried keys were dropped), not the manifest.
    decoded = []
    real = manifest_stream._to_frame
    monkeypatch.setattr(
        manifest_stream, "_to_frame", lambda *a: decoded.append(real(*a)) or decoded[-1]
    )
    next(iter_manifest(retried, SCHEMA, batch_rows=4, run_first=RUN_FIRST))
    assert 4 <= sum(map(len, decoded)) <= 2 * 4
    with pytest.raises(ValueError, match="batch_rows"):
        next(iter_manifest(retried, SCHEMA, batch_rows=0, run_first=RUN_FIRST))


def test_only_the_requested_columns_are_read(retried):
    whole = read_manifest(retried, SCHEMA, run_first=RUN_FIRST).df
    batches = list(iter_manifest(retried, SCHEMA, columns=["coeffs", "score"], batch_rows=9,
                                 run_first=RUN_FIRST))  # fmt: skip
    got = _concat(batches)
    assert list(got.columns) == ["image", "face", "coeffs", "score", "status"]  # schema order
    _assert_same(got, whole[list(got.columns)])
    scalars = read_columns(retried, SCHEMA, ["score"], RUN_FIRST)
    _assert_same(scalars, whole[["image", "face", "score", "status"]])
    with pytest.raises(UsageError, match="scalar columns only"):
        read_columns(retried, SCHEMA, ["landmarks"], RUN_FIRST)
    with pytest.raises(KeyError, match="nope"):
        next(iter_manifest(retried, SCHEMA, columns=["nope"], run_first=RUN_FIRST))


def test_the_streamed_digest_is_manifest_digest_of_the_ok_rows(retried):
    whole = read_manifest(retried, SCHEMA, run_first=RUN_FIRST).df
    ok = whole[whole["status"] == "ok"].reset_index(drop=True)
    columns = ("image", "face", "status", "landmarks", "contour", "score", "flipped", "error")
    stream = ManifestStream(retried, SCHEMA, run_first=RUN_FIRST)
    assert stream.digest(columns) == manifest_digest(ok, columns)
    assert stream.digest(columns, ok_only=False) == manifest_digest(whole, columns)


def test_row_counts_come_from_the_markers(retried, tmp_path):
    assert count_rows(retried) == 40 + 8  # stored rows: the retried keys count twice
    with pytest.raises(MissingManifestError):
        count_rows(tmp_path / "missing.parquet")


def test_a_changed_part_is_refused_naming_it(retried):
    part = live_parts(retried)[2].path
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # still Parquet, other bytes
    part.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=f"{part.name}: changed after it was written"):
        next(iter_manifest(retried, SCHEMA, run_first=RUN_FIRST))
    with pytest.raises(UsageError, match=part.name):
        read_columns(retried, SCHEMA, ["score"], RUN_FIRST)


def test_a_part_with_another_row_count_than_its_marker_is_refused(retried):
    marker = retried / "_part-00001.json"
    marker.write_text(marker.read_text().replace('"rows": 7', '"rows": 8'))
    with pytest.raises(UsageError, match=r"part-00001\.parquet: 7 rows, its marker says 8"):
        ManifestStream(retried, SCHEMA, run_first=RUN_FIRST)


def test_a_single_file_manifest_of_an_older_version_streams(tmp_path):
    write(tmp_path / "dir.parquet", make_rows(9))
    old = tmp_path / "old.parquet"
    live_parts(tmp_path / "dir.parquet")[0].path.rename(old)
    whole = read_manifest(old, SCHEMA, run_first=RUN_FIRST).df
    _assert_same(_concat(list(iter_manifest(old, SCHEMA, batch_rows=4, run_first=RUN_FIRST))),
                 whole)  # fmt: skip
    assert count_rows(old) == 9


def test_a_missing_manifest_names_the_command_to_run_first(tmp_path):
    with pytest.raises(MissingManifestError, match=RUN_FIRST):
        next(iter_manifest(tmp_path / "none.parquet", SCHEMA, run_first=RUN_FIRST))
    with pytest.raises(MissingManifestError, match=RUN_FIRST):
        read_columns(tmp_path / "none.parquet", SCHEMA, ["score"], RUN_FIRST)


def test_a_manifest_without_rows_yields_nothing(tmp_path):
    path = tmp_path / "empty.parquet"
    with ManifestWriter(path, SCHEMA, **PROVENANCE):
        pass
    assert list(iter_manifest(path, SCHEMA, run_first=RUN_FIRST)) == []
    assert list(read_columns(path, SCHEMA, ["score"], RUN_FIRST).columns) == [
        "image", "face", "score", "status",
    ]  # fmt: skip
