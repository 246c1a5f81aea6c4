"""Smooth paths through affect: waypoints in VA, AU or emotion space, sampled per frame.

A path is written as waypoints joined by ``->`` (or ``→``), all of one kind:

* VA: ``"0,0 -> 0.6,0.4 -> -0.3,0.7"`` (valence,arousal, each in [-1, 1]);
* AU: ``"AU12=0 -> AU12=4,AU6=2"`` (an AU a waypoint leaves out is 0 there);
* emotion: ``"neutral -> happiness:0.8 -> surprise"`` (intensity 0–1, default 1; the path runs
  through the space of per-emotion intensities, so a frame between two emotions blends their
  EMFACS prototypes, :mod:`.emotion_prior`, without summing antagonists,
  :mod:`.prototype_blend`).

Frames move along the polyline through the waypoints at constant speed in arc length, with a
C1 ease at both ends: speed ramps linearly from 0 over the first and last ``ease_fraction`` of
the frames, so position and velocity are continuous and the clip starts and stops at rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.emotion_prior import EMOTIONS, canonical_emotion, emotion_aus
from augmentface.expression.prototype_blend import blend_prototypes
from augmentface.expression.targets import ExpressionTarget, parse_au_items

_ARROW = re.compile(r"\s*(?:->|→)\s*")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VA = re.compile(rf"^\(?\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)?$")
_EMOTION = re.compile(rf"^([A-Za-z]+)\s*(?::\s*({_NUMBER}))?$")


class PathError(UsageError):
    """A path that cannot be read, or mixes kinds of waypoint."""


@dataclass(frozen=True)
class AffectPath:
    """Waypoints of one kind as points in a common space.

    Attributes
    ----------
    kind : str
        ``"va"``, ``"au"`` or ``"emotion"``.
    dims : tuple[str, ...]
        (D,) names of the coordinates: ``("valence", "arousal")``, ``("AU6", "AU12", …)`` or
        :data:`EMOTIONS` without ``"neutral"`` (a neutral waypoint is all zeros).
    waypoints : np.ndarray
        (W, D) float64 coordinates of the waypoints.
    """

    kind: str
    dims: tuple[str, ...]
    waypoints: np.ndarray


@dataclass(frozen=True)
class PathConfig:
    """How a path is sampled.

    Attributes
    ----------
    n_frames : int
        Frames, ≥ 2; the first and last are exactly the first and last waypoints.
    ease_fraction : float
        Fraction of the frames, at each end, over which speed ramps from 0 (0 = constant speed
        throughout, 0.5 = accelerate for the first half, decelerate for the second).
    """

    n_frames: int
    ease_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.n_frames < 2:
            raise PathError(f"a path needs at least 2 frames, got {self.n_frames}")
        if not 0.0 <= self.ease_fraction <= 0.5:
            raise PathError(f"ease_fraction must be in [0, 0.5], got {self.ease_fraction}")


def _va_point(text: str, position: int) -> np.ndarray:
    match = _VA.match(text)
    if not match:
        raise PathError(f"waypoint {position} {text!r}: write valence,arousal, e.g. 0.6,0.4")
    v, a = float(match.group(1)), float(match.group(2))
    va_prior.check_va(v, a)
    return np.array([v, a])


def _emotion_point(text: str, position: int) -> dict[str, float]:
    match = _EMOTION.match(text)
    if not match:
        raise PathError(
            f"waypoint {position} {text!r}: write emotion or emotion:intensity, e.g. happiness:0.8"
        )
    name = canonical_emotion(match.group(1))
    intensity = float(match.group(2)) if match.group(2) else 1.0
    emotion_aus(name, intensity)  # refuses intensities outside [0, 1]
    return {} if name == "neutral" else {name: intensity}


def _kind_of(text: str) -> str:
    """The kind a waypoint is written as (a malformed one still gets its kind's message)."""
    if "=" in text:
        return "au"
    if re.match(r"^[-+.(\d]", text):
        return "va"
    return "emotion"


def parse_path(text: str) -> AffectPath:
    """Read a path such as ``"0,0 -> 0.6,0.4"`` (module notes give the three forms).

    Raises
    ------
    PathError
        Empty waypoints, unreadable ones, or waypoints of different kinds.
    UsageError
        Values out of range, unknown AUs or emotions (their messages list the allowed ones).
    """
    parts = _ARROW.split(str(text).strip())
    if not parts or any(not p.strip() for p in parts):
        raise PathError(f"cannot read path {text!r}: waypoints joined by ->, e.g. '0,0 -> 0.6,0.4'")
    kinds = [_kind_of(p) for p in parts]
    kind = kinds[0]
    for i, other in enumerate(kinds):
        if other != kind:
            raise PathError(
                f"waypoint {i + 1} {parts[i]!r} is a {other} waypoint in a {kind} path; "
                "use one kind per path"
            )
    if kind == "va":
        return AffectPath(
            "va",
            ("valence", "arousal"),
            np.stack([_va_point(p, i + 1) for i, p in enumerate(parts)]),
        )
    if kind == "au":
        items = [parse_au_items([p]) for p in parts]
        aus = sorted({au for item in items for au in item})
        points = np.array([[item.get(au, 0.0) for au in aus] for item in items])
        return AffectPath("au", tuple(f"AU{au}" for au in aus), points)
    items_e = [_emotion_point(p, i + 1) for i, p in enumerate(parts)]
    dims = tuple(e for e in EMOTIONS if e != "neutral")
    points = np.array([[item.get(e, 0.0) for e in dims] for item in items_e])
    return AffectPath("emotion", dims, points)


def eased_progress(n_frames: int, ease_fraction: float) -> np.ndarray:
    """(n_frames,) fraction of the path done at each frame: 0 first, 1 last, C1 in time.

    The speed profile is a trapezoid: it rises linearly over ``ease_fraction`` of the time,
    stays constant, and falls linearly over the last ``ease_fraction``.
    """
    u = np.linspace(0.0, 1.0, n_frames)
    e = ease_fraction
    if e == 0.0:
        return u
    v_max = 1.0 / (1.0 - e)
    return np.where(
        u < e,
        v_max * u**2 / (2 * e),
        np.where(u > 1 - e, 1.0 - v_max * (1 - u) ** 2 / (2 * e), v_max * (u - e / 2)),
    )


def interpolate_path(path: AffectPath, config: PathConfig) -> np.ndarray:
    """(n_frames, D) per-frame coordinates along the waypoints' polyline.

    Arc length is measured in the path's own space (VA units, AU intensity or emotion
    intensity); a path of one waypoint, or of zero length, stays at its first waypoint.
    """
    points = path.waypoints
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    total = cumulative[-1]
    if total == 0.0:
        return np.repeat(points[:1], config.n_frames, axis=0)
    s = eased_progress(config.n_frames, config.ease_fraction) * total
    segment = np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(lengths) - 1)
    # Zero-length segments (repeated waypoints) are never selected: searchsorted skips them.
    t = (s - cumulative[segment]) / np.where(lengths[segment] > 0, lengths[segment], 1.0)
    frames = points[segment] + t[:, None] * (points[segment + 1] - points[segment])
    frames[0], frames[-1] = points[0], points[-1]  # exact, whatever the rounding
    return frames


def frame_aus(path: AffectPath, values: np.ndarray) -> dict[int, float]:
    """AU intensities (0–5) of one frame: the VA prior, the AUs themselves, or blended emotions.

    Emotion frames add each emotion's prototype at its intensity, clipped to 5; where two
    pull one feature opposite ways, the stronger keeps it (:func:`.blend_prototypes`).
    """
    if path.kind == "va":
        return va_prior.prior_aus(float(values[0]), float(values[1]))
    if path.kind == "au":
        return {int(d[2:]): float(x) for d, x in zip(path.dims, values, strict=True) if x > 0}
    intensities = np.clip(values, 0.0, 1.0)
    return blend_prototypes(
        [
            (emotion_aus(name, float(i), all_aus=True), float(i))
            for name, i in zip(path.dims, intensities, strict=True)
        ]
    )


def path_targets(path: AffectPath, frames: np.ndarray, sequence: str) -> list[ExpressionTarget]:
    """One target per frame, all sharing the ``sequence`` id and numbered by ``frame``.

    VA paths give VA targets (label = the frame's V, A), AU paths AU targets, emotion paths
    emotion targets labelled with the frame's strongest emotion and its intensity ("neutral"
    where every intensity is 0). Target ids are ``<sequence>-<frame>`` so a clip sorts in order.
    """
    out = []
    for i, values in enumerate(frames):
        common = {"target_id": f"{sequence}-{i:05d}", "sequence": sequence, "frame": i}
        aus = frame_aus(path, values)
        if path.kind == "va":
            v, a = float(values[0]), float(values[1])
            out.append(ExpressionTarget(kind="va", aus=aus, valence=v, arousal=a,
                                        label_valence=v, label_arousal=a, **common))  # fmt: skip
        elif path.kind == "emotion":
            strongest = int(np.argmax(values))
            intensity = float(np.clip(values[strongest], 0.0, 1.0))
            emotion = path.dims[strongest] if intensity > 0 else "neutral"
            out.append(ExpressionTarget(kind="emotion", aus=aus, emotion=emotion,
                                        emotion_intensity=intensity, **common))  # fmt: skip
        else:
            out.append(ExpressionTarget(kind="au", aus=aus, **common))
    return out


def path_offsets(frames: np.ndarray, realize: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(n_frames, 468, 3) offsets: ``realize(values)`` for each frame's (D,) coordinates.

    E.g. ``realize=lambda va: models.blended_offsets(*va)`` for a VA path through class
    models, or ``lambda x: rig.offsets(rig.vector(frame_aus(path, x)))`` for the rig.
    """
    return np.stack([np.asarray(realize(values), dtype=np.float64) for values in frames])
