"""Subject-independent folds: DISFA 3, AFEW-VA 5, Aff-Wild2 its own train/validation split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from augmentface.errors import UsageError

#: Folds by dataset, after the papers' protocols (Liu et al.: DISFA 3 folds by subject;
#: Kollias et al.: AFEW-VA 5-fold person-independent cross-validation).
DATASET_FOLDS: dict[str, int] = {"disfa": 3, "afew_va": 5}
#: ``--folds`` when the dataset names none.
DEFAULT_FOLDS = 3


@dataclass(frozen=True)
class Fold:
    """One fold: the subjects trained on and the disjoint subjects tested on."""

    index: int
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]

    def __post_init__(self) -> None:
        shared = set(self.train_subjects) & set(self.test_subjects)
        if shared:
            raise UsageError(f"fold {self.index}: subjects {sorted(shared)} in train and test")


def split_for(split: str, challenge: str | None) -> str:
    """The split of one challenge in an Aff-Wild2 split name: ``Train`` for 'VA' in
    ``VA=Train;AU=Validation``; a plain name is every challenge's; '' when none is given."""
    if "=" not in split:
        return split
    parts = dict(part.split("=", 1) for part in split.split(";") if "=" in part)
    return parts.get(challenge or "", "")


def make_folds(
    subjects: Sequence[str],
    *,
    dataset: str,
    k: int | None,
    seed: int,
    splits: Mapping[str, str] | None = None,
    challenge: str | None = None,
) -> list[Fold]:
    """The folds of an experiment.

    Parameters
    ----------
    subjects : every subject id with real frames.
    dataset : the fits' dataset ('disfa', 'afew_va', 'affwild2', …).
    k : ``--folds``; None: the dataset's protocol (:data:`DATASET_FOLDS`, else
        :data:`DEFAULT_FOLDS`). Ignored for Aff-Wild2 with a train/validation split.
    seed : shuffles the subjects before they are dealt to folds round-robin.
    splits : subject -> the dataset's split name, when the dataset gives one. Aff-Wild2 names a
        video in different splits for different challenges ``VA=Train;AU=Validation``.
    challenge : the challenge whose split counts for such a video ('VA', 'AU'); None: such a
        video is in neither side.

    Returns
    -------
    list of Fold
        Every subject is tested in exactly one fold (one fold for a given split).

    Raises
    ------
    UsageError
        Fewer than 2 subjects, or fewer subjects than folds.
    """
    unique = sorted(set(subjects))
    if splits and dataset == "affwild2":
        names = {s: split_for(str(splits.get(s, "")), challenge).lower() for s in unique}
        test = tuple(s for s in unique if names[s].startswith(("val", "test")))
        train = tuple(s for s in unique if names[s].startswith("train"))
        if train and test:
            return [Fold(0, train, test)]
    n = k if k is not None else DATASET_FOLDS.get(dataset, DEFAULT_FOLDS)
    if n < 2 or len(unique) < n:
        raise UsageError(f"{len(unique)} subjects cannot make {n} subject-independent folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    groups = [[unique[i] for i in order[j::n]] for j in range(n)]
    return [
        Fold(j, tuple(sorted(s for g in groups[:j] + groups[j + 1 :] for s in g)), tuple(sorted(g)))
        for j, g in enumerate(groups)
    ]
