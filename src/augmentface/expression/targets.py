"""Expression targets: what a synthesized sample should show, and its label.

Every expression source turns a target into the same thing, ``expression_offsets_model_mm``
(468, 3). Direct FACS mode (this module with the rig) and the VA prior are the sources today;
learned models plug in as further :class:`ExpressionSource` implementations.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression import emotion_prior, va_prior
from augmentface.expression.au_rig import AU_ALIASES, AURig, spec_for

#: Standard deviation, in AU intensity units, of the seeded jitter around a target when several
#: samples are asked for.
AU_JITTER_SD = 0.3


@dataclass(frozen=True)
class ExpressionTarget:
    """One requested expression.

    ``aus`` maps AU number -> intensity (0–5). For VA targets, ``valence``/``arousal`` hold the
    requested pair and ``label_valence``/``label_arousal`` the label to write (the pair itself,
    or its class median); for AU targets they are NaN. Emotion targets name their category
    and intensity (0–1). Frames of a smooth path share a ``sequence`` id and are numbered by
    ``frame`` (-1 outside a path).
    """

    target_id: str
    kind: str  # "au", "va", "emotion" or "transfer"
    aus: Mapping[int, float] = field(default_factory=dict)
    valence: float = math.nan
    arousal: float = math.nan
    label_valence: float = math.nan
    label_arousal: float = math.nan
    emotion: str | None = None
    emotion_intensity: float = math.nan
    sequence: str | None = None
    frame: int = -1


_AU_ITEM = re.compile(r"^\s*(?:AU)?\s*(\d+)\s*=\s*([-+0-9.eE]+)\s*$", re.IGNORECASE)


def parse_au_items(items: Iterable[str]) -> dict[int, float]:
    """Parse ``["12=3", "AU6=2", "AU1=1,AU2=1"]`` into ``{12: 3.0, 6: 2.0, 1: 1.0, 2: 1.0}``.

    Unknown AUs, intensities outside 0–5, and an AU given twice (AU45, a blink, is an alias of
    AU43: giving both is giving one AU twice) are refused with one message, since keeping
    either value silently would label the output with what was not asked.
    """
    out: dict[int, float] = {}
    given: dict[int, str] = {}  # the AU each item resolves to -> how it was written
    for item in items:
        for part in str(item).split(","):
            if not part.strip():
                continue
            match = _AU_ITEM.match(part)
            if not match:
                raise UsageError(f"cannot read AU target {part.strip()!r}; write it as AU12=3")
            au, value = int(match.group(1)), float(match.group(2))
            number = spec_for(au).number  # raises UsageError listing the allowed AUs
            if number in given:
                raise UsageError(
                    f"AU{number} is given twice ({given[number]} and {part.strip()}); "
                    "give each AU once (AU45 is an alias of AU43)"
                )
            given[number] = part.strip()
            if not np.isfinite(value) or not 0.0 <= value <= 5.0:
                raise UsageError(f"AU{au} intensity must be in 0–5 (FACS scale), got {value}")
            out[au] = value
    return out


def au_target(aus: Mapping[int, float]) -> ExpressionTarget:
    """An AU target with a readable, stable id such as ``AU6=2_AU12=3``."""
    if not aus:
        raise UsageError("an AU target needs at least one AU, e.g. --au 12=3")
    target_id = "_".join(f"AU{au}={aus[au]:g}" for au in sorted(aus))
    return ExpressionTarget(target_id=target_id, kind="au", aus=dict(aus))


def va_target(
    valence: float,
    arousal: float,
    *,
    label: str = "target",
    class_median: Callable[[float, float], tuple[float, float]] | None = None,
) -> ExpressionTarget:
    """A VA target; ``label`` is "target" or "class-median".

    ``class_median(valence, arousal)`` gives the label of the target's class: a learned
    model's median of its training frames; by default (prior mode) the class centre.
    """
    va_prior.check_va(valence, arousal)
    if label not in ("target", "class-median"):
        raise UsageError(f"label must be 'target' or 'class-median', got {label!r}")
    if label == "class-median":
        if class_median is None:
            lv, la = va_prior.va_class_center(va_prior.va_class(valence, arousal))
        else:
            lv, la = class_median(valence, arousal)
    else:
        lv, la = valence, arousal
    return ExpressionTarget(
        target_id=f"V{valence:+.2f}_A{arousal:+.2f}",
        kind="va",
        aus=va_prior.prior_aus(valence, arousal),
        valence=valence,
        arousal=arousal,
        label_valence=lv,
        label_arousal=la,
    )


def va_grid(
    *,
    label: str = "class-median",
    classes: Iterable[int] = range(100),
    class_median: Callable[[float, float], tuple[float, float]] | None = None,
) -> list[ExpressionTarget]:
    """One target at the centre of each given class of the VA square (default: all 100)."""
    centres = [va_prior.va_class_center(i) for i in classes]
    return [va_target(v, a, label=label, class_median=class_median) for v, a in centres]


def emotion_target(emotion: str, intensity: float = 1.0) -> ExpressionTarget:
    """A categorical emotion at ``intensity`` (0–1), with its EMFACS prototype's AUs."""
    aus = emotion_prior.emotion_aus(emotion, intensity)  # validates both
    name = emotion_prior.canonical_emotion(emotion)
    return ExpressionTarget(
        target_id=f"{name}@{intensity:g}",
        kind="emotion",
        aus=aus,
        emotion=name,
        emotion_intensity=float(intensity),
    )


def read_targets_csv(path: str | Path, *, label: str = "target") -> list[ExpressionTarget]:
    """Targets from a CSV: columns ``valence,arousal`` (VA rows) or ``AU<n>`` columns (AU rows)."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read targets CSV ({exc})") from exc
    au_cols = [c for c in table.columns if re.fullmatch(r"AU\d+", str(c).strip(), re.I)]
    has_va = {"valence", "arousal"} <= set(table.columns)
    if not au_cols and not has_va:
        raise UsageError(f"{path}: needs columns valence,arousal or AU<n> columns (e.g. AU12)")
    targets = []
    for i, row in table.iterrows():
        if has_va:
            targets.append(va_target(float(row["valence"]), float(row["arousal"]), label=label))
            continue
        items = [f"{c}={row[c]}" for c in au_cols if pd.notna(row[c]) and float(row[c]) > 0]
        if not items:
            raise UsageError(f"{path}: row {i + 2} sets no AU above 0")
        targets.append(au_target(parse_au_items(items)))
    return targets


def sample_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and the row's identity, independent of processing order.

    Resuming a run, or running it in another order, therefore gives the same samples.
    """
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class ExpressionSource(Protocol):
    """Anything that turns a target into AU intensities and expression offsets."""

    name: str

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (au_intensities (K,), expression_offsets_model_mm (468, 3))."""
        ...


@dataclass(frozen=True)
class RigSource:
    """Direct FACS mode: the target's AUs through the rig (VA targets via the prior).

    Sample 0 is the target itself; further samples add seeded Gaussian jitter
    (:data:`AU_JITTER_SD`) to every requested AU, clipped to 0–5, for variety.
    """

    rig: AURig
    name: str = "facs-rig"

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        intensities = self.rig.vector({AU_ALIASES.get(a, a): v for a, v in target.aus.items()})
        if sample > 0:
            active = intensities > 0
            noise = rng.normal(0.0, AU_JITTER_SD, size=intensities.shape)
            intensities = np.where(active, np.clip(intensities + noise, 0.0, 5.0), 0.0)
        return intensities, self.rig.offsets(intensities)
