"""augmentface.atomic.atomic_write_bytes: the bytes, the mode, no temporary file left, the old
file kept on failure."""

from __future__ import annotations

import os

import pytest

from augmentface import atomic
from augmentface.atomic import FILE_MODE, atomic_path, atomic_write_bytes


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_bytes_writes_the_file_with_the_usual_mode(tmp_path, durable) -> None:
    path = tmp_path / "new" / "folder" / "a.rgbaz"  # missing folders are made

    atomic_write_bytes(path, b"first", durable=durable)
    atomic_write_bytes(path, b"second" * 1000, durable=durable)

    assert path.read_bytes() == b"second" * 1000
    assert os.stat(path).st_mode & 0o777 == FILE_MODE
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.rgbaz"]
    # The same mode as a file written through atomic_path.
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    assert os.stat(tmp_path / "b.bin").st_mode & 0o777 == FILE_MODE


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "a.jpg"
    atomic_write_bytes(path, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]

    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]


def test_a_taken_temporary_name_is_drawn_again(tmp_path, monkeypatch) -> None:
    tokens = iter([b"\x00" * 5, b"\x00" * 5, b"\x01" * 5])
    monkeypatch.setattr(atomic.os, "urandom", lambda n: next(tokens))
    taken = tmp_path / ".a.png.0000000000.tmp.png"
    taken.write_bytes(b"another writer's")

    atomic_write_bytes(tmp_path / "a.png", b"mine")

    assert (tmp_path / "a.png").read_bytes() == b"mine"
    assert taken.read_bytes() == b"another writer's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken.name, "a.png"]


def test_a_folder_that_cannot_be_made_is_an_error(tmp_path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "file" / "a.png", b"x")
