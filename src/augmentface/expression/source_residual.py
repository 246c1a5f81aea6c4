"""What of a source photo's own expression survives a replacement, and when it contradicts the
label the output is given.

The render replaces the fitted expression's geometry, but not all of what the photo shows: a
broad smile's raised cheeks, folds and squint are in its texture, and only partly flattened
(the detail layer lifts the folds it knows). So an output keeps, in appearance, roughly what the
source shows of each AU beyond what the target asks for. Per AU that is the *source residual*:

    residual_k = max(shown_k - target_k, 0),   shown_k = clip(fitted_k - 2 noise_k, 0, 5)

with ``fitted_k`` the fit's signed estimate (what the replacement removes; the bounded 0–5
estimate is a poor measure here: with its other AUs held at 0 or above, one AU can absorb a
person's mouth shape) and ``noise_k`` the AU's identity noise (how much a person's own shape
alone reads as that AU, ``face/data/identity_au_noise.json``, one standard deviation over
neutral faces): within :data:`IDENTITY_MARGIN` of them an estimate cannot be told from a
person's face at rest, and nothing is left to survive. Only AUs whose appearance the warp
cannot undo count (:data:`SURVIVING_AUS`): those that fold or bunch the skin (their folds are
texture, which the warp carries along), and a closed eye (there is no eye in the photo to open
it onto). What the others do is geometry alone, and the warp replaces it in full: a parted
mouth closes over its teeth or gets a new interior, a widened eye's lids come down, a
stretched mouth narrows.

A residual *contradicts* the label when a person would read the output otherwise
(:func:`label_conflict`): the residual holds at least :data:`RESIDUAL_LIMIT` (FACS "B", slight
but clear) of an AU that pulls a feature opposite to the target (a smile's 12 under a target
with 15; brows raised under 4; see :data:`.prototype_blend.FEATURES`), or of a smile under a
label of negative valence or a negative emotion, whatever AUs the target names: a sad face
that still smiles reads happy. An AU label (``au_labelled``: the AU columns are the label, as
for DISFA) is contradicted by any AU that survives that strongly beyond its labelled value.
Kollias et al. avoid all this by synthesizing from neutral frames only; with a labelled
dataset, synthesis does the same by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.prototype_blend import FEATURES

#: Identity noises (SDs) an estimate must exceed to be the photo's expression rather than the
#: person's face at rest: 2 leaves out what 95 % of neutral faces read (AU9's 2 SDs are 17
#: units: a nose is rarely told from a wrinkled one).
IDENTITY_MARGIN = 2.0
#: FACS "B" (slight evidence): a residual at least this strong reads as the source's expression.
RESIDUAL_LIMIT = 2.0
#: AUs whose appearance survives a replacement: the skin folds and bulges of those that have a
#: detail map (render/detail_maps.py), and the closed eye.
SURVIVING_AUS = frozenset({1, 2, 4, 6, 9, 10, 12, 14, 15, 17, 43})
#: The AU whose survival reads as happiness, and the labels it contradicts.
SMILE_AU = 12
NEGATIVE_EMOTIONS = frozenset({"sadness", "anger", "fear", "disgust", "contempt"})
#: Valence below which a VA label is negative (one class, 0.2, away from neutral).
NEGATIVE_VALENCE = -0.2


def shown_intensities(fitted: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(K,) what a photo shows of each AU beyond a person's own shape:
    ``fitted − IDENTITY_MARGIN × noise`` within the FACS scale, 0–5 (an estimate beyond E says
    the AU is at its maximum).

    Parameters
    ----------
    fitted : (K,) the fit's signed AU estimate, FACS units (``FaceFit.au_signed``).
    noise : (K,) each AU's identity noise, FACS units (``face.model.identity_au_noise``).
    """
    fitted, noise = np.asarray(fitted, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    if fitted.shape != noise.shape:
        raise ValueError(f"fitted {fitted.shape} and noise {noise.shape} must match")
    return np.clip(fitted - IDENTITY_MARGIN * noise, 0.0, INTENSITY_MAX)


def source_residual(
    shown: np.ndarray, target: np.ndarray, au_numbers: Sequence[int]
) -> np.ndarray:
    """(K,) what survives of the source in the output: ``max(shown − target, 0)``, FACS units,
    for the AUs whose appearance survives (:data:`SURVIVING_AUS`), 0 for the others.
    ``au_numbers`` (K,) name the entries."""
    shown, target = np.asarray(shown, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if shown.shape != target.shape or shown.shape != (len(au_numbers),):
        raise ValueError(
            f"shown {shown.shape}, target {target.shape} and {len(au_numbers)} AUs must match"
        )
    residual = np.maximum(shown - target, 0.0)
    residual[[k for k, au in enumerate(au_numbers) if au not in SURVIVING_AUS]] = 0.0
    return residual


def label_conflict(
    residual: np.ndarray,
    target: np.ndarray,
    au_numbers: Sequence[int],
    *,
    valence: float = math.nan,
    emotion: str | None = None,
    au_labelled: bool = False,
    limit: float = RESIDUAL_LIMIT,
) -> str | None:
    """Why the source residual contradicts the output's label, or None when it does not.

    Parameters
    ----------
    residual, target : (K,) the source residual and the target's AU intensities, FACS 0–5, in
        the order of ``au_numbers``.
    au_numbers : the AUs (the rig's order).
    valence : the output's valence label in [-1, 1] (NaN when it has none).
    emotion : the output's emotion label, if any.
    au_labelled : whether the AU intensities themselves are the label (AU and transfer
        targets), so that every AU's residual counts.
    limit : the residual, FACS units, from which a surviving AU reads.

    Returns
    -------
    str or None
        One line naming the surviving AU, its residual and what it contradicts.
    """
    residual = np.asarray(residual, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    index = {au: k for k, au in enumerate(au_numbers)}
    active = {au for au, k in index.items() if target[k] > 0}
    for raised, lowered in FEATURES:
        for wanted, opposite in ((raised, lowered), (lowered, raised)):
            if not active & wanted or active & opposite:
                continue
            for au in sorted(opposite & index.keys()):
                if residual[index[au]] >= limit:
                    asked = "+".join(f"AU{a}" for a in sorted(active & wanted))
                    return (
                        f"the source's own AU{au} survives at {residual[index[au]]:.1f} "
                        f"against the target's {asked}"
                    )
    if au_labelled and residual.max(initial=0.0) >= limit:
        k = int(np.argmax(residual))
        return (
            f"the source's own AU{au_numbers[k]} survives at {residual[k]:.1f} beyond its "
            f"label {target[k]:g}"
        )
    smile = residual[index[SMILE_AU]] if SMILE_AU in index else 0.0
    negative = (emotion in NEGATIVE_EMOTIONS) or (
        math.isfinite(valence) and valence < NEGATIVE_VALENCE
    )
    if smile >= limit and negative:
        label = emotion if emotion in NEGATIVE_EMOTIONS else f"valence {valence:+.2f}"
        return f"the source's own smile (AU12 {smile:.1f}) survives under the label {label}"
    return None
