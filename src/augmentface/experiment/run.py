"""The experiment runner: per fold, train the same estimator on the real training frames and
on the same frames plus augmented ones of the same training subjects, test on held-out
subjects, and record the metrics. A finished fold is a marker file written atomically
(``experiment/folds/fold-K.json``); a rerun with the same settings and data skips it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_text
from augmentface.errors import UsageError
from augmentface.experiment.crops import crop_cache
from augmentface.experiment.data import ExperimentData, load_data
from augmentface.experiment.estimators import ESTIMATORS, Estimator, estimator
from augmentface.experiment.folds import Fold, make_folds
from augmentface.experiment.metrics import scores
from augmentface.experiment.report import (
    CONDITIONS,
    with_averages,
    write_protocol,
    write_results_csv,
    write_results_png,
)

#: ``--control``: none; real (and augmented) training labels permuted; augmented labels
#: permuted (a poisoned augmentation).
CONTROLS: tuple[str, ...] = ("none", "shuffled-labels", "poisoned-augmentation")


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of ``augmentface experiment`` (see the command's ``--help``)."""

    workdir: Path
    kind: str = "au"
    folds: int | None = None
    ratio: float = 1.0
    balance: bool = False
    estimator: str = "hog-ridge"
    steps: int = 2000
    seed: int = 0
    device: str = "cpu"
    crop_size: int = 112
    control: str = "none"
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.ratio < 0:
            raise UsageError(f"--ratio must not be negative, got {self.ratio}")
        if self.steps < 1:
            raise UsageError(f"--steps must be at least 1, got {self.steps}")
        if not 32 <= self.crop_size <= 512:
            raise UsageError(f"--crop-size must be 32–512 px, got {self.crop_size}")
        if self.control not in CONTROLS:
            raise UsageError(f"--control must be one of {', '.join(CONTROLS)}")
        if self.estimator not in ESTIMATORS:
            estimator(self.estimator)


@dataclass
class ExperimentResult:
    """What a run produced: results (with averages), the protocol, the folds it resumed."""

    results: pd.DataFrame
    protocol: dict[str, Any]
    resumed: list[int] = field(default_factory=list)
    out_dir: Path = Path()


class Rows:
    """Rows of two crop arrays as one (N, S, S, 3) array-like: indexing with a slice or an
    integer array gathers from each source without copying either whole."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self._array = [a for a, _ in parts]
        self._source = np.concatenate([np.full(len(i), k) for k, (_, i) in enumerate(parts)])
        self._row = np.concatenate([np.asarray(i, dtype=np.int64) for _, i in parts])
        size = parts[0][0].shape[1:]
        self.shape = (len(self._row), *size)
        self.dtype = np.uint8

    def __len__(self) -> int:
        return len(self._row)

    def __getitem__(self, key: Any) -> np.ndarray:
        index = np.arange(len(self))[key]
        out = np.empty((len(index), *self.shape[1:]), dtype=np.uint8)
        for k, array in enumerate(self._array):
            mask = self._source[index] == k
            if mask.any():
                out[mask] = array[self._row[index[mask]]]
        return out


def _weights(labels: np.ndarray, kind: str) -> np.ndarray:
    """Draw weights that flatten the label distribution: per AU, 1 / the share of its
    intensity level (0–5), averaged over AUs; VA, 1 / the share of its 10 x 10 bin."""
    if kind == "au":
        levels = np.clip(np.rint(labels), 0, 5).astype(int)
        w = np.zeros(len(labels))
        for t in range(labels.shape[1]):
            counts = np.bincount(levels[:, t], minlength=6).astype(float)
            w += 1.0 / counts[levels[:, t]]
        return w / labels.shape[1]
    bins = np.clip(((labels[:, :2] + 1) * 5).astype(int), 0, 9)
    cell = bins[:, 0] * 10 + bins[:, 1]
    return 1.0 / np.bincount(cell, minlength=100)[cell]


def _draw(pool: np.ndarray, labels: np.ndarray, n: int, balance: bool, kind: str,
          rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """``n`` indices of ``pool`` (without replacement while it lasts), by the balance weights."""
    if n == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    p = _weights(labels[pool], kind) if balance else np.ones(len(pool))
    chosen = rng.choice(pool, size=n, replace=n > len(pool), p=p / p.sum())
    return np.sort(chosen)


def _plan(data: ExperimentData, folds: list[Fold], config: ExperimentConfig) -> list[dict]:
    """Per fold: real train and test indices and the drawn augmented indices, checked to be
    subject-independent (no test subject in training, augmented frames included)."""
    plans = []
    for fold in folds:
        train = np.flatnonzero(np.isin(data.real.subjects, fold.train_subjects))
        test = np.flatnonzero(np.isin(data.real.subjects, fold.test_subjects))
        pool = np.flatnonzero(np.isin(data.augmented.subjects, fold.train_subjects))
        rng = np.random.default_rng([config.seed, fold.index])
        n_aug = round(config.ratio * len(train))
        aug = _draw(pool, data.augmented.labels, n_aug, config.balance, config.kind, rng)
        used = set(data.real.subjects[train]) | set(data.augmented.subjects[aug])
        leaked = used & set(data.real.subjects[test])
        if leaked or not len(train) or not len(test):
            raise UsageError(f"fold {fold.index}: leaked {sorted(leaked)} or an empty side")
        plans.append({"fold": fold, "train": train, "test": test, "augmented": aug})
    return plans


def _digest(config: ExperimentConfig, data: ExperimentData, fit_id: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(fit_id.encode())
    settings = {k: v for k, v in asdict(config).items() if k not in ("quiet", "device", "workdir")}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for frames in (data.real, data.augmented):
        h.update("\n".join(frames.refs).encode())
        h.update(np.ascontiguousarray(frames.labels).tobytes())
        h.update(np.ascontiguousarray(frames.anchors, dtype=np.float32).tobytes())
    return h.hexdigest()


def _name(fit: Estimator) -> str:
    return f"{getattr(fit, '__module__', '')}.{getattr(fit, '__qualname__', repr(fit))}"


def _permuted(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return labels[rng.permutation(len(labels))]


def _run_fold(
    plan: dict,
    data: ExperimentData,
    crops: tuple[np.ndarray, np.ndarray],
    config: ExperimentConfig,
    fit: Estimator,
) -> dict[str, Any]:
    """Both conditions of one fold: metrics rows, sizes and timings."""
    fold: Fold = plan["fold"]
    real_crops, aug_crops = crops
    rng = np.random.default_rng([config.seed, fold.index, 1])
    y_real = data.real.labels[plan["train"]]
    y_aug = data.augmented.labels[plan["augmented"]]
    if config.control == "shuffled-labels":
        y_real, y_aug = _permuted(y_real, rng), _permuted(y_aug, rng)
    elif config.control == "poisoned-augmentation":
        y_aug = _permuted(y_aug, rng)
    test_crops = Rows([(real_crops, plan["test"])])
    y_test = data.real.labels[plan["test"]]
    rows, timing = [], {}
    for condition in CONDITIONS:
        parts = [(real_crops, plan["train"])]
        labels = y_real
        if condition == "real+augmented" and len(plan["augmented"]):
            parts.append((aug_crops, plan["augmented"]))
            labels = np.concatenate([y_real, y_aug])
        train = Rows(parts)
        start = time.perf_counter()
        predictor = fit(train, labels, seed=config.seed, steps=config.steps, device=config.device)
        trained = time.perf_counter()
        predicted = np.asarray(predictor(test_crops), dtype=np.float64).reshape(len(y_test), -1)
        evaluated = time.perf_counter()
        for t, target in enumerate(data.targets):
            rows.append({"condition": condition, "fold": fold.index, "target": target,
                         **scores(config.kind, predicted[:, t], y_test[:, t])})  # fmt: skip
        timing[condition] = {
            "train_frames": len(train),
            "train_s": trained - start,
            "eval_frames": len(y_test),
            "eval_s": evaluated - trained,
        }
    return {"rows": rows, "timing": timing}


def run_experiment(
    config: ExperimentConfig,
    *,
    fit: Estimator | None = None,
    fit_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run (or resume) an experiment and write ``<workdir>/experiment/``.

    Parameters
    ----------
    config : the settings.
    fit : a user's own estimator (:class:`~augmentface.experiment.estimators.Estimator`);
        None: ``config.estimator``.
    fit_id : names ``fit`` and its settings in the resume digest (default: its module and
        qualified name), so that a fold done with another estimator is not kept.
    progress : called with one line per fold.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    UsageError, MissingManifestError
        Missing or unlabelled manifests, too few subjects, a fold that would leak a subject.
    """
    say = progress or (lambda _: None)
    out = Path(config.workdir) / "experiment"
    data = load_data(Path(config.workdir), config.kind)
    plans = _plan(data, _folds(data, config), config)
    fit_id = fit_id or (None if fit is None else _name(fit))
    fit = fit or estimator(config.estimator)
    digest = _digest(config, data, fit_id or config.estimator)
    used_aug = np.unique(np.concatenate([p["augmented"] for p in plans]))
    start = time.perf_counter()
    real_crops, aug_crops = _crops(data, used_aug, config)
    crop_s = time.perf_counter() - start
    records, resumed = [], []
    for plan in plans:
        k = plan["fold"].index
        marker = out / "folds" / f"fold-{k}.json"
        done = json.loads(marker.read_text()) if marker.exists() else None
        if done is not None and done.get("digest") == digest:
            resumed.append(k)
            say(f"fold {k}: done earlier, kept")
        else:
            done = _run_fold(plan, data, (real_crops, aug_crops), config, fit) | {"digest": digest}
            marker.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(marker, json.dumps(done, default=float))
            say(f"fold {k}: trained and tested")
        records.append(done)
    per_fold = pd.DataFrame([row for record in records for row in record["rows"]])
    results = with_averages(per_fold)
    protocol = _protocol(config, data, plans, records, digest, crop_s, len(used_aug))
    write_results_csv(out / "results.csv", results)
    write_protocol(out / "protocol.json", protocol)
    write_results_png(out / "results.png", results, config.kind)
    return ExperimentResult(results, protocol, resumed, out)


def run_fold(
    data: ExperimentData, config: ExperimentConfig, index: int = 0, *, fit: Estimator | None = None
) -> dict[str, Any]:
    """One fold of an experiment, both conditions, without resume or result files (the
    benchmark's unit of work).

    Parameters
    ----------
    data : the workdir's frames, :func:`~augmentface.experiment.data.load_data`.
    config : the settings; its folds, seed, ratio, balance, control, crop size and steps apply.
    index : the fold, 0 to the number of folds − 1.
    fit : an estimator; None: ``config.estimator``.

    Returns
    -------
    dict
        ``rows``: per condition and target, a dict of ``condition``, ``fold``, ``target``
        and the metrics (:data:`~augmentface.experiment.metrics.METRICS`, NaN where they do
        not apply); ``timing``: per condition ``train_frames``, ``train_s`` (s),
        ``eval_frames``, ``eval_s`` (s); ``crop_s``: seconds to decode (or reuse) the crop
        caches of every real frame and of the fold's augmented frames.
    """
    plan = _plan(data, _folds(data, config)[index : index + 1], config)[0]
    start = time.perf_counter()
    crops = _crops(data, np.unique(plan["augmented"]), config)
    crop_s = time.perf_counter() - start
    done = _run_fold(plan, data, crops, config, fit or estimator(config.estimator))
    return done | {"crop_s": crop_s}


def _folds(data: ExperimentData, config: ExperimentConfig) -> list[Fold]:
    subjects = sorted(set(data.real.subjects))
    # Aff-Wild2's challenges are named in upper case (VA, AU), as the experiment kinds are not.
    return make_folds(subjects, dataset=data.dataset, k=config.folds, seed=config.seed,
                      splits=data.splits, challenge=config.kind.upper())  # fmt: skip


def _crops(
    data: ExperimentData, used_aug: np.ndarray, config: ExperimentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The crop caches of every real frame and of the augmented frames ``used_aug`` (sorted,
    unique), the latter at their own rows (others empty)."""
    size, folder = config.crop_size, Path(config.workdir) / "experiment" / "crops"
    real = crop_cache(data.real.refs, data.real.anchors, size, folder)
    if not len(used_aug):
        return real, np.zeros((0, size, size, 3), dtype=np.uint8)
    frames = data.augmented
    crops = crop_cache([frames.refs[i] for i in used_aug], frames.anchors[used_aug], size, folder)
    return real, _Scattered(crops, used_aug, len(frames))


class _Scattered:
    """An (N, ...) view of crops stored only for the rows ``used`` (sorted)."""

    def __init__(self, crops: np.ndarray, used: np.ndarray, n: int) -> None:
        self._crops, self._used = crops, used
        self.shape = (n, *crops.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._crops[np.searchsorted(self._used, rows)])


def _protocol(
    config: ExperimentConfig,
    data: ExperimentData,
    plans: list[dict],
    records: list[dict],
    digest: str,
    crop_s: float,
    n_aug_crops: int,
) -> dict[str, Any]:
    import torch

    folds = []
    for plan, record in zip(plans, records, strict=True):
        fold: Fold = plan["fold"]
        folds.append({
            "fold": fold.index,
            "train_subjects": list(fold.train_subjects),
            "test_subjects": list(fold.test_subjects),
            "augmented_subjects": sorted(set(data.augmented.subjects[plan["augmented"]])),
            "n_train_real": len(plan["train"]),
            "n_train_augmented": len(plan["augmented"]),
            "n_test": len(plan["test"]),
            "timing": record["timing"],
        })  # fmt: skip
    settings = {k: v for k, v in asdict(config).items() if k != "quiet"}
    return {
        "settings": settings,
        "dataset": data.dataset,
        "targets": list(data.targets),
        "units": "FACS 0–5" if config.kind == "au" else "[-1, 1]",
        "seeds": {
            "folds": config.seed,
            "draws": [[config.seed, p["fold"].index] for p in plans],
            "estimator": config.seed,
        },
        "sizes": {
            "real_frames": len(data.real),
            "augmented_frames": len(data.augmented),
            "augmented_crops_decoded": n_aug_crops,
        },
        "crop_s": crop_s,
        "folds": folds,
        "digest": digest,
        "versions": {
            "augmentface": importlib.metadata.version("augmentface"),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
