"""Learned AU models: a CGAN and a CAAE that draw expressions for AU labels.

Trained on a fitted, labelled manifest (a dataset import run through ``fit3dmm``), they work
in the data-driven expression space of :mod:`augmentface.expression.space` and plug into
synthesis as ``source.LearnedAUSource``, an ``ExpressionSource`` like the rig.

Modules (imported one by one, so reading labels does not load torch):

- ``labels``: the AU label columns and their checks (``DISFA_AUS``, ``read_au_labels``);
- ``config``: ``TrainConfig``;
- ``data``: coefficients, identity codes and the subject split (``prepare_training_data``);
- ``nets``: the MLPs and the GAN losses; ``cgan`` and ``caae``: the two models;
- ``train``: ``train_au_model``; ``trained``: ``TrainedAUModel``, ``load_au_model``;
- ``checkpoint``: the file format; ``source``: ``LearnedAUSource``.
"""
