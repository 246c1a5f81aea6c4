"""Round trip: synthesize each of DISFA's AUs on near-neutral real photos, re-detect, re-fit.

The issue's target is a mean absolute error <= 1.0 per AU on the 0–5 scale. Reached today
(see the printout with ``pytest -s``): about 1.5 overall, 0.7–1.3 for AU1, 2, 12, 15, 26 and
1.4–2.4 for AU4, 5, 6, 9, 17, 20, 25 — MediaPipe's landmarks follow brows, lids and cheeks
only partly. The bounds below guard what is reached so that it cannot silently get worse.
"""

from __future__ import annotations

import numpy as np

from augmentface.face.fitting import fit_face
from tests.test_expression_response import _neutral_faces, synthesize_and_detect

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def test_disfa_round_trip(shared_faces, landmarker, model):
    errors: dict[int, list[float]] = {au: [] for au in DISFA_AUS}
    for image, face, _ in _neutral_faces(shared_faces, landmarker):
        fit = fit_face(face.landmarks_px, model)
        for au in DISFA_AUS:
            k = model.rig.au_numbers.index(au)
            for intensity in (2.0, 4.0):
                again = synthesize_and_detect(image, face, fit, {au: intensity}, model, landmarker)
                refit = fit_face(again[0].landmarks_px, model)
                errors[au].append(abs(refit.au_intensities[k] - intensity))
    mae = {au: float(np.mean(v)) for au, v in errors.items()}
    print(
        "round-trip MAE per AU:",
        {f"AU{a}": round(v, 2) for a, v in mae.items()},
        f"overall {np.mean(list(mae.values())):.2f}",
    )
    assert np.mean(list(mae.values())) <= 1.6
    assert max(mae.values()) <= 2.5
    assert mae[12] <= 1.1 and mae[26] <= 1.2 and mae[1] <= 1.2
