"""stages.common.resolved_folder: a folder resolved once, as Path.resolve gives it."""

from __future__ import annotations

from pathlib import Path

from augmentface.stages.common import resolved_folder


def test_resolved_folder_is_the_files_own_resolved_folder(tmp_path, monkeypatch) -> None:
    real = tmp_path / "real" / "renders"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    file = tmp_path / "link" / "renders" / "a.rgbaz"
    file.write_bytes(b"x")

    assert resolved_folder(file.parent) / file.name == file.resolve()
    assert resolved_folder(file.parent) is resolved_folder(Path(str(file.parent)))  # kept
    # A relative folder is resolved against the directory it is used in.
    for where in (tmp_path / "real", tmp_path):
        monkeypatch.chdir(where)
        relative = Path("renders") if where.name == "real" else Path("real/renders")
        assert resolved_folder(relative) == real.resolve()
    (tmp_path / "other" / "renders").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "other")
    assert resolved_folder(Path("renders")) == (tmp_path / "other" / "renders").resolve()
