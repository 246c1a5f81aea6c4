"""Issue 13, deliverable 3: a file-system error that stops a run (a workdir that is a file, a
full disk, a read-only file system) is one line naming the path and exit code 2, never a
traceback, and what earlier stages wrote is left as it was."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from augmentface import manifest
from augmentface.cli import app


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.mark.parametrize("command", [["fit3dmm", "PHOTOS"], ["import", "folder", "PHOTOS"]])
def test_a_workdir_that_is_a_file(tmp_path, astronaut, command):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "a.png")
    workdir = tmp_path / "work"
    workdir.write_text("not a folder\n")
    args = [str(photos) if a == "PHOTOS" else a for a in command]
    result = CliRunner().invoke(app, [*args, "-w", str(workdir), "-q"])
    assert result.exit_code == 2, result.output
    assert str(workdir) in _one_error_line(result.output)
    assert workdir.read_text() == "not a folder\n"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, astronaut):
    root = tmp_path_factory.mktemp("fitted")
    (root / "photos").mkdir()
    for i in range(2):
        Image.fromarray(np.roll(astronaut, 7 * i, axis=1)).save(root / "photos" / f"{i}.png")
    result = CliRunner().invoke(app, ["fit3dmm", str(root / "photos"), "-w", str(root), "-q"])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk_full", "read_only"])
def test_a_write_that_fails_stops_with_one_line(fitted, monkeypatch, code):
    """A manifest part that cannot be written: one line naming it, exit 2; the fits the run
    read are untouched, and no partial targets manifest is left to be resumed from."""
    fits = fitted / "fits.parquet"
    before = {p.name: p.read_bytes() for p in fits.iterdir() if p.is_file()}

    def failing_write_part(directory, table, *, replaces):
        raise OSError(code, os.strerror(code), str(directory / "part-00000.parquet"))

    monkeypatch.setattr(manifest, "write_part", failing_write_part)
    result = CliRunner().invoke(app, ["synth-au", "--au", "12=3", "-w", str(fitted), "-q"])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(fitted / "targets.parquet") in line and os.strerror(code) in line
    assert {p.name: p.read_bytes() for p in fits.iterdir() if p.is_file()} == before
    assert not list((fitted / "targets.parquet").glob("part-*.parquet"))
