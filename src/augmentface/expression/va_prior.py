"""The built-in valence/arousal prior: (V, A) in [-1, 1]² -> AU intensities (0–5).

With no training data, a target affect is turned into a facial expression through the basic
emotions. Each emotion sits at a direction on Russell's circumplex of affect (Russell 1980,
"A circumplex model of affect", J. Pers. Soc. Psychol. 39:1161; placements as in the
circumplex figures of Russell 1980 and Scherer 2005) and has a prototypical AU configuration
from EMFACS (Friesen & Ekman 1983; as tabulated in Ekman & Rosenberg 2005 and Matsumoto &
Ekman's FACS-coded prototypes):

===========  ========================  ================================================
emotion      direction (V, A)          prototype AUs at full strength (EMFACS variant)
===========  ========================  ================================================
happiness    ( 0.80,  0.40)            6 + 12, lips parting over the teeth (25) from a
                                       third of its strength
surprise     ( 0.15,  0.85)            1 + 2 + 5 + 25 + 26 (a full jaw drop)
fear         (-0.55,  0.80)            1 + 2 + 4 + 5 + 20 + 25 + 26 (the eyes at their
                                       widest, brows raised and drawn together)
anger        (-0.70,  0.55)            4 + 5 + 7 + 23, baring the teeth (10 + 25 + 26)
                                       from half strength
disgust      (-0.75,  0.25)            9 + 10 + 15 + 16 + 25 (16 and 25 from 0.4)
sadness      (-0.70, -0.40)            1 + 4 + 15 + 17, lids drooping (43 at 1)
===========  ========================  ================================================

Each is an apex a person recognises: the intensities are FACS "D" to "E" for the AUs that carry
the expression (checked by eye on the astronaut and the shared photos, and with an independent
emotion classifier, ``tests/test_quality.py``; ``docs/realism.md``).

The low-arousal half of the circumplex has no basic emotion; two project-chosen anchors cover it
so every target gets a face: *relaxed/content* (0.65, -0.55) as a soft smile (12, a little 6) and
*sleepy/tired* (-0.05, -0.90) as drooping lids (43 at half strength). These two are our choice,
not EMFACS prototypes.

A target's AUs come from the two anchors neighbouring it in angle, at weights ``1 - t`` and
``t`` by angle, each prototype at its weight times the target's strength (which grows from 0
at (0, 0) to 1 at the anchors' radius and beyond), through
:func:`~augmentface.expression.prototype_blend.blend_prototypes`: AUs the two agree on mix
linearly, antagonists never add up (fear's raised brows and anger's lowered ones do not
cancel into flat brows). The nearer anchor keeps its configuration of each contested
feature; within 0.15 of the midpoint the feature crosses through its relaxed state, so a path
never jumps. Every point therefore shows the face of the emotion nearest to it in direction.

Some AUs join a prototype only as it grows (:attr:`EmotionAnchor.onsets`): a faint smile
keeps the lips together, a broad one parts them over the upper teeth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from augmentface.errors import UsageError
from augmentface.expression.prototype_blend import blend_prototypes


@dataclass(frozen=True)
class EmotionAnchor:
    name: str
    valence: float
    arousal: float
    aus: dict[int, float]  # AU -> intensity (0–5) at full strength
    #: AU -> strength (0–1) at which it starts: it grows from 0 there to its full value at 1.
    onsets: dict[int, float] = field(default_factory=dict)

    def aus_at(self, strength: float, *, all_aus: bool = False) -> dict[int, float]:
        """AU intensities (0–5) of the prototype at ``strength`` in [0, 1]; with ``all_aus``
        the AUs that have not started yet are kept at 0 (a blend reads a prototype's
        configuration from the AUs it names, see :func:`.blend_prototypes`)."""
        out = {}
        for au, value in self.aus.items():
            onset = self.onsets.get(au, 0.0)
            scaled = value * float(np.clip((strength - onset) / (1.0 - onset), 0.0, 1.0))
            if scaled > 0 or all_aus:
                out[au] = scaled
        return out

    @property
    def angle(self) -> float:
        return float(np.arctan2(self.arousal, self.valence))

    @property
    def radius(self) -> float:
        return float(np.hypot(self.valence, self.arousal))


ANCHORS: tuple[EmotionAnchor, ...] = (
    EmotionAnchor("happiness", 0.80, 0.40, {6: 4.0, 12: 5.0, 25: 4.5}, onsets={25: 0.3}),
    EmotionAnchor("surprise", 0.15, 0.85, {1: 4.5, 2: 4.5, 5: 3.5, 25: 3.0, 26: 5.0}),
    EmotionAnchor("fear", -0.55, 0.80,
                  {1: 4.0, 2: 4.0, 4: 1.5, 5: 5.0, 20: 5.0, 25: 3.0, 26: 3.0}),
    EmotionAnchor("anger", -0.70, 0.55,
                  {4: 5.0, 5: 3.0, 7: 4.0, 23: 3.0, 10: 3.0, 25: 3.0, 26: 2.0},
                  onsets={10: 0.5, 25: 0.5, 26: 0.5}),
    EmotionAnchor("disgust", -0.75, 0.25, {9: 5.0, 10: 4.0, 15: 2.0, 16: 3.0, 25: 3.0},
                  onsets={16: 0.4, 25: 0.4}),
    EmotionAnchor("sadness", -0.70, -0.40, {1: 4.5, 4: 3.0, 15: 4.5, 17: 3.0, 43: 1.0}),
    EmotionAnchor("sleepy", -0.05, -0.90, {43: 2.5}),
    EmotionAnchor("relaxed", 0.65, -0.55, {6: 1.0, 12: 2.5}),
)  # fmt: skip

VA_CLASS_EDGES = np.linspace(-1.0, 1.0, 11)


def check_va(valence: float, arousal: float) -> None:
    """Refuse values outside [-1, 1] (one message naming the bad value)."""
    for name, value in (("valence", valence), ("arousal", arousal)):
        if not np.isfinite(value) or not -1.0 <= value <= 1.0:
            raise UsageError(f"{name} must be in [-1, 1], got {value}")


def va_class(valence: float, arousal: float) -> int:
    """Index 0–99 of the 0.2 × 0.2 class: ``10 * arousal_bin + valence_bin`` (Kollias et al.)."""
    check_va(valence, arousal)
    # The epsilon keeps values on a class edge (0.4 is 1.4 / 0.2 = 6.9999…) in the upper class.
    v = min(int(np.floor((valence + 1.0) / 0.2 + 1e-9)), 9)
    a = min(int(np.floor((arousal + 1.0) / 0.2 + 1e-9)), 9)
    return 10 * a + v


def va_class_center(index: int) -> tuple[float, float]:
    """(valence, arousal) at the centre of a class: its median when no data fill it."""
    if not 0 <= index <= 99:
        raise UsageError(f"VA class must be in 0..99, got {index}")
    a, v = divmod(index, 10)
    return round(-0.9 + 0.2 * v, 6), round(-0.9 + 0.2 * a, 6)


def prior_aus(valence: float, arousal: float) -> dict[int, float]:
    """AU intensities (0–5) the prior gives a (V, A) target; empty at the centre."""
    check_va(valence, arousal)
    radius = float(np.hypot(valence, arousal))
    if radius < 1e-6:
        return {}
    angle = float(np.arctan2(arousal, valence))
    ordered = sorted(ANCHORS, key=lambda a: a.angle)
    angles = np.array([a.angle for a in ordered])
    upper = int(np.searchsorted(angles, angle)) % len(ordered)
    lo, hi = ordered[upper - 1], ordered[upper]
    span = (hi.angle - lo.angle) % (2 * np.pi)
    t = ((angle - lo.angle) % (2 * np.pi)) / span if span else 0.0
    strength = min(1.0, radius / ((1 - t) * lo.radius + t * hi.radius))
    return blend_prototypes(
        [(anchor.aus_at(strength * w, all_aus=True), w) for anchor, w in ((lo, 1.0 - t), (hi, t))]
    )
