"""The HTML report and the worst-first sheet, on a real work directory (astronaut, 3 targets)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import pytest
from PIL import Image

from augmentface import report
from augmentface.contact_sheet import CAPTION_PX, TILE_PX
from augmentface.expression.targets import au_target, va_target
from augmentface.manifest import read_manifest
from augmentface.pipeline import PipelineConfig, run_pipeline
from augmentface.report import EVALUATE_HINT, write_report
from augmentface.stages.evaluate import EVALUATION_FILE, SUMMARY_FILE, EvaluateConfig, run_evaluate
from augmentface.stages.schemas import EVALUATION, LABELS

TARGETS = (au_target({12: 4, 6: 3}), au_target({1: 4, 2: 4}), va_target(-0.7, -0.4))
CHROMIUM = Path("/usr/bin/chromium")


class _Page(HTMLParser):
    """Collects the tags and the gallery captions, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.captions: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self._in_caption = tag == "figcaption"

    def handle_endtag(self, tag: str) -> None:
        self._in_caption = False

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.captions.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, astronaut) -> Path:
    """Pipeline and evaluation on the astronaut; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("report")
    png = root / "astronaut.png"
    Image.fromarray(astronaut).save(png)
    wd = root / "augment"
    # Every output kept: the report is the subject here, not the source-residual gate (the
    # astronaut's smile survives under the non-smiling labels; see test_pipeline).
    config = PipelineConfig(workdir=wd, contact_sheet=False, max_source_residual=None, quiet=True)
    run_pipeline([png], TARGETS, config)
    run_evaluate(EvaluateConfig(workdir=wd, quiet=True))
    return wd


def _copy(workdir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(workdir, tmp_path / "augment"))


def test_report_with_evaluation(workdir, tmp_path):
    html_path, sheet_path = write_report(_copy(workdir, tmp_path))
    assert html_path == tmp_path / "augment" / "output" / "report.html"
    text = html_path.read_text(encoding="utf-8")
    for target in TARGETS:
        assert target.target_id in text
    assert "data:image/jpeg;base64," in text and "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and EVALUATE_HINT not in text
    page = _parse(html_path)
    assert page.tags.count("img") == 1 + 2 * len(TARGETS)  # AU plots + source/output pairs
    assert page.tags.count("figure") == len(TARGETS)
    assert "identity distance" in "".join(page.captions)
    sheet = cv2.imread(str(sheet_path))
    assert sheet.shape == (TILE_PX + CAPTION_PX, 3 * (2 * TILE_PX + 8), 3)  # one row, 3 pairs


def test_gallery_is_worst_first(workdir, tmp_path):
    html_path, _ = write_report(workdir, tmp_path)
    evaluation = read_manifest(workdir / "output" / EVALUATION_FILE, EVALUATION, run_first="").df
    expected = evaluation.sort_values("identity_distance", ascending=False)["target_id"]
    shown = [c.split(" (sample")[0] for c in _parse(html_path).captions]
    assert evaluation["redetected"].all()  # else they would come first whatever the distance
    assert shown == list(expected)


def test_lost_face_ranks_first(workdir):
    labels = read_manifest(workdir / "output" / "labels.parquet", LABELS, run_first="").df
    evaluation = read_manifest(workdir / "output" / EVALUATION_FILE, EVALUATION, run_first="").df
    best = evaluation["identity_distance"].idxmin()
    evaluation.loc[best, "redetected"] = False
    ranked = report._rank(labels, evaluation)
    assert ranked["target_id"].iloc[0] == evaluation.loc[best, "target_id"]
    assert list(ranked["identity_distance"].iloc[1:]) == sorted(
        ranked["identity_distance"].iloc[1:], reverse=True
    )


def test_labels_only_report(workdir, tmp_path):
    wd = _copy(workdir, tmp_path)
    shutil.rmtree(wd / "output" / EVALUATION_FILE)  # a manifest is a directory of parts
    for name in ("evaluation.csv", SUMMARY_FILE):
        (wd / "output" / name).unlink()
    html_path, sheet_path = write_report(wd, tmp_path / "out")
    text = html_path.read_text(encoding="utf-8")
    assert EVALUATE_HINT in text
    assert all(t.target_id in text for t in TARGETS)
    page = _parse(html_path)
    assert page.tags.count("img") == 2 * len(TARGETS)  # no plots without metrics
    assert "identity distance" not in "".join(page.captions)
    assert cv2.imread(str(sheet_path)) is not None


def test_gallery_cap_is_stated(workdir, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_THUMBNAILS", 2)
    monkeypatch.setattr(report, "GALLERY_MAX", 1)
    html_path, _ = write_report(workdir, tmp_path)
    assert _parse(html_path).tags.count("figure") == 1
    assert f"Showing 1 of {len(TARGETS)} outputs" in html_path.read_text(encoding="utf-8")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed")
def test_page_renders_in_chromium(workdir, tmp_path):
    html_path, _ = write_report(workdir, tmp_path)
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1400,3000",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert cv2.imread(str(shot)) is not None
