"""``augmentface experiment``: does augmentation help an estimator? Subject-independent folds,
two conditions (``real``, ``real+augmented``) under one training budget, the papers' metrics."""
