"""Blend expression prototypes without summing antagonist Action Units.

Summing two prototypes' AUs is safe where they agree, and ruinous where they pull one feature
opposite ways: fear's raised brows (1 + 2) plus anger's lowered ones (4) cancel into flat brows,
a smile's raised lip corners (12) plus sadness's lowered ones (15) into a flat mouth, and what
remains reads as no emotion at all. The rig's fields are linear, so the cancellation is exact.

The rule, per *feature* (a pair of antagonist AU groups, :data:`FEATURES`):

1. A part's *direction* on a feature is +1 when it names any AU of the feature's first group,
   else -1 when it names any of the second, else 0 (it leaves the feature alone). A prototype
   holding both groups (fear: 1 + 2 + 4, drawn by the rig's 1+4 rule as raised brows pulled
   together) counts by its first group: that is how the face looks. AUs are named even at
   intensity 0: a prototype whose lips part only as it grows (anger bares its teeth at full
   strength) keeps one direction at every strength, so a blend never jumps as an AU starts.
2. Parts with opposite directions compete. Each side's share of their weight is
   ``f = W_side / (W_plus + W_minus)``; the side's feature AUs are multiplied by
   ``clip((f - 0.5) / CROSSOVER, 0, 1)``. The larger side keeps its configuration at full
   weight once it holds ``0.5 + CROSSOVER`` of the weight; the smaller one is dropped. At an
   even split both fade to zero, so a smooth path from one prototype to the other crosses
   through a relaxed feature instead of jumping, and nowhere sums the two.
3. Every other AU is summed as given: compatible movements (fear's wide eyes and anger's
   glare, surprise's open mouth and happiness's parted lips) mix as they do in faces.

Each part comes at the intensities it should have in the blend (a VA point between two anchors
gives each anchor's prototype at its share of the strength) with a *weight*, its claim on the
features it competes for. The result is ``Σ_parts scale · intensity``, clipped to 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from augmentface.expression.au_rig import INTENSITY_MAX

#: Features as (first group, second group) of AUs that move them opposite ways (FACS Manual,
#: Ekman, Friesen & Hager 2002: 1/2 vs 4 on the brows; 12 vs 15 on the lip corners; 5 vs 43 on
#: the upper lid; 16/25/26/27 vs 23/24 on the lips).
FEATURES: tuple[tuple[frozenset[int], frozenset[int]], ...] = (
    (frozenset({1, 2}), frozenset({4})),  # brows raised / lowered
    (frozenset({12}), frozenset({15})),  # lip corners up / down
    (frozenset({5}), frozenset({43})),  # upper lid raised / closed
    (frozenset({16, 25, 26, 27}), frozenset({23, 24})),  # lips apart / pressed together
)
#: Share of the weight beyond an even split at which the larger side is at full weight.
CROSSOVER = 0.15

Part = tuple[Mapping[int, float], float]


def _direction(aus: Mapping[int, float], raise_group: frozenset, lower_group: frozenset) -> int:
    active = set(aus)
    if active & raise_group:
        return 1
    return -1 if active & lower_group else 0


def _feature_scales(parts: Sequence[Part]) -> list[dict[int, float]]:
    """Per part, the factor of each of its AUs that loses or wins a feature (1 elsewhere)."""
    scales: list[dict[int, float]] = [{} for _ in parts]
    for raise_group, lower_group in FEATURES:
        directions = [_direction(aus, raise_group, lower_group) for aus, _ in parts]
        weight = {
            d: sum(w for (_, w), di in zip(parts, directions, strict=True) if di == d)
            for d in (1, -1)
        }
        if weight[1] <= 0 or weight[-1] <= 0:
            continue  # no competition on this feature
        total = weight[1] + weight[-1]
        for scale, direction in zip(scales, directions, strict=True):
            if direction:
                share = weight[direction] / total
                factor = float(np.clip((share - 0.5) / CROSSOVER, 0.0, 1.0))
                for au in raise_group | lower_group:
                    scale[au] = factor
    return scales


def blend_prototypes(parts: Sequence[Part]) -> dict[int, float]:
    """AU intensities (0–5) of weighted prototypes, antagonists resolved (module notes).

    Parameters
    ----------
    parts : sequence of (aus, weight)
        Each ``aus`` maps AU number -> intensity (0–5) of one prototype at its strength in the
        blend, naming (at 0) the prototype's AUs that have not started yet; ``weight`` >= 0 is
        its claim on the features it competes for (e.g. ``1 - t`` and
        ``t`` between two neighbouring anchors of the VA prior, or each emotion's intensity on
        an emotion path). Weights need not sum to 1: only their ratios matter.

    Returns
    -------
    dict[int, float]
        AU number -> intensity, clipped to 5, AUs at or below 1e-3 left out.
    """
    if any(w < 0 or not np.isfinite(w) for _, w in parts):
        raise ValueError(f"weights must be finite and >= 0, got {[w for _, w in parts]}")
    out: dict[int, float] = {}
    for (aus, _), scale in zip(parts, _feature_scales(parts), strict=True):
        for au, value in aus.items():
            out[au] = out.get(au, 0.0) + scale.get(au, 1.0) * value
    return {au: min(v, INTENSITY_MAX) for au, v in sorted(out.items()) if v > 1e-3}
