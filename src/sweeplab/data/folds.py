"""k-fold cross-validation splits (scikit-learn's splitters) of the examples a data module trains on.

The test split is held out first and never enters a fold: folds divide what would otherwise be the
training and validation splits. Every data module takes the same three settings:

    data.folds          null (no cross-validation) or K >= 2
    data.fold_strategy  kfold | stratified | timeseries
    data.fold           null (run every fold: set by nobody but run_experiment) or k in [0, K)

and, with `fold` set, trains on the other folds and validates on fold k.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

STRATEGIES = ("kfold", "stratified", "timeseries")


def check(folds: int | None, fold: int | None, strategy: str, allowed: tuple[str, ...] = STRATEGIES) -> None:
    """Raise ValueError (one line: what is wrong, what is allowed) for settings no data module can serve."""
    if folds is None:
        if fold is not None:
            raise ValueError(f"data.fold={fold} needs data.folds=K (the number of folds)")
        return
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"data.folds={folds}: must be a whole number of at least 2, or null (no cross-validation)")
    if strategy not in allowed:
        raise ValueError(f"data.fold_strategy={strategy}: this data allows {', '.join(allowed)}")
    if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds):
        raise ValueError(f"data.fold={fold}: must be in 0..{folds - 1} (data.folds={folds}), or null")


def split(n: int, labels: np.ndarray | None, folds: int, fold: int, strategy: str,
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of fold `fold` over `n` examples, each sorted.

    kfold and stratified shuffle with `seed` (the data's split_seed, so every trial of a sweep sees
    the same folds); timeseries keeps time order: fold k trains on everything before its
    validation block (scikit-learn's TimeSeriesSplit: the first block is never validated on).
    """
    if strategy == "kfold":
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    elif strategy == "stratified":
        if labels is None:
            raise ValueError("data.fold_strategy=stratified needs class labels; this data has none "
                             "(use kfold or timeseries)")
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    elif strategy == "timeseries":
        splitter = TimeSeriesSplit(n_splits=folds)
    else:
        raise ValueError(f"data.fold_strategy={strategy}: must be one of {', '.join(STRATEGIES)}")
    if n < folds * 2:
        raise ValueError(f"data.folds={folds}: only {n} examples to divide (at least 2 per fold)")
    placeholder = np.zeros(n)
    train, val = list(splitter.split(placeholder, labels if strategy == "stratified" else None))[fold]
    return np.sort(train), np.sort(val)
