"""The data-driven expression space: deformations from the subject's neutral, and the PCA basis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augmentface.expression.space import (
    REFERENCE_NEUTRAL,
    REFERENCE_NO_NEUTRAL,
    REFERENCE_SINGLE_FRAME,
    BasisFileError,
    ExpressionBasis,
    ExpressionSpaceError,
    FaceModelMismatchError,
    NeutralReferenceConfig,
    basis_from_chunks,
    expression_deformations_model_mm,
    fit_expression_basis,
)

N_VERTS = 468


def _low_rank_fields(seed: int, n: int, variances: tuple[float, ...], noise: float = 1e-3):
    """(n, 468, 3) fields spanned by len(variances) orthonormal directions, plus tiny noise."""
    rng = np.random.default_rng(seed)
    directions, _ = np.linalg.qr(rng.normal(size=(N_VERTS * 3, len(variances))))
    coeffs = rng.normal(size=(n, len(variances))) * np.sqrt(variances)
    flat = coeffs @ directions.T + 0.7 + noise * rng.normal(size=(n, N_VERTS * 3))
    return flat.reshape(n, N_VERTS, 3).astype(np.float32)


def test_basis_round_trip_and_k_by_variance():
    fields = _low_rank_fields(0, 400, (9.0, 4.0, 1.0, 0.25, 0.05))
    basis = basis_from_chunks([fields[:150], fields[150:]], "model-a", variance=0.95)
    cumulative = np.cumsum(basis.explained_variance_ratio)
    assert basis.n_components == 3  # 9 + 4 + 1 of 14.3 is 97.9 %, 9 + 4 is 90.9 %
    assert cumulative[-1] >= 0.95 > cumulative[-2]
    assert basis.variance_target == 0.95
    flat = basis.components.reshape(basis.n_components, -1).astype(np.float64)
    np.testing.assert_allclose(flat @ flat.T, np.eye(basis.n_components), atol=1e-5)

    full = basis_from_chunks([fields], "model-a", variance=0.999)
    assert full.n_components == 5
    coeffs = full.encode(fields)
    assert coeffs.shape == (400, 5) and coeffs.dtype == np.float32
    decoded = full.decode(coeffs)
    assert decoded.shape == (400, N_VERTS, 3)
    np.testing.assert_allclose(decoded, fields, atol=0.01)  # the noise is 0.001 mm
    assert full.encode(fields[0]).shape == (1, 5)


def test_accumulated_pca_matches_svd():
    fields = _low_rank_fields(1, 300, (5.0, 2.0, 0.5), noise=0.05)
    basis = basis_from_chunks(np.array_split(fields, 7), "m", variance=1.0, max_components=4)
    flat = fields.reshape(len(fields), -1).astype(np.float64)
    centred = flat - flat.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(basis.variance_mm2, s[:4] ** 2 / len(flat), rtol=1e-4)
    overlap = np.abs(np.sum(vt[:4] * basis.components.reshape(4, -1), axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-4)
    np.testing.assert_allclose(basis.mean_model_mm.reshape(-1), flat.mean(axis=0), atol=1e-5)


def test_max_components_caps_k():
    fields = _low_rank_fields(2, 100, (3.0, 2.0, 1.0))
    assert basis_from_chunks([fields], "m", variance=0.999, max_components=2).n_components == 2
    with pytest.raises(ExpressionSpaceError, match="variance"):
        basis_from_chunks([fields], "m", variance=1.5)
    with pytest.raises(ExpressionSpaceError, match="at least 2 frames"):
        basis_from_chunks([fields[:1]], "m")


def test_min_components_keeps_small_directions():
    """A direction with 2 % of the variance is dropped by a 95 % target unless asked for."""
    fields = _low_rank_fields(4, 200, (10.0, 3.0, 0.3))
    assert basis_from_chunks([fields], "m", variance=0.95).n_components == 2
    assert basis_from_chunks([fields], "m", variance=0.95, min_components=3).n_components == 3
    with pytest.raises(ExpressionSpaceError, match="min_components"):
        basis_from_chunks([fields], "m", max_components=2, min_components=3)


def test_basis_save_load_and_wrong_model(tmp_path):
    basis = basis_from_chunks([_low_rank_fields(3, 50, (2.0, 1.0))], "model-a", variance=0.99)
    path = basis.save(tmp_path / "basis.npz")
    loaded = ExpressionBasis.load(path, "model-a")
    for name in ("mean_model_mm", "components", "explained_variance_ratio", "variance_mm2"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(basis, name))
    assert loaded.face_model_id == "model-a" and loaded.variance_target == 0.99
    with np.load(path, allow_pickle=False) as data:  # plain arrays only, no pickled objects
        assert "components" in data.files
    with pytest.raises(FaceModelMismatchError, match=r"model-a.*model-b"):
        ExpressionBasis.load(path, "model-b")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(BasisFileError, match="not a readable"):
        ExpressionBasis.load(tmp_path / "text.npz", "model-a")
    np.savez(tmp_path / "other.npz", components=np.zeros(3))
    with pytest.raises(BasisFileError, match="not an augmentface expression basis"):
        ExpressionBasis.load(tmp_path / "other.npz", "model-a")
    with pytest.raises(BasisFileError):
        ExpressionBasis.load(tmp_path / "missing.npz", "model-a")


def _manifest(rows: list[dict]) -> pd.DataFrame:
    zeros = np.zeros((N_VERTS, 3), dtype=np.float32)
    out = []
    for row in rows:
        full = {"status": "ok", "identity_offsets_model_mm": zeros}
        full.update(row)
        out.append(full)
    return pd.DataFrame(out)


def test_deformation_is_relative_to_the_subject_neutral(model):
    verts = model.mean_verts_model_mm
    # A resting stretch of this subject's face that the fitter reads as expression.
    stretch = np.zeros_like(verts)
    stretch[:, 1] = 0.03 * (verts[:, 1] - verts[:, 1].mean())
    smile = model.rig.offsets(model.rig.vector({12: 3.0}))
    identity = np.random.default_rng(0).normal(0, 1.0, size=verts.shape)
    rows = []
    for i in range(20):
        expressive = i >= 10
        rows.append(
            {
                "subject_id": "S1",
                "identity_offsets_model_mm": identity.astype(np.float32),
                "expression_offsets_model_mm": (stretch + (smile if expressive else 0)),
                "label_AU12": 3.0 if expressive else 0.0,
                "label_AU6": 0.0,
            }
        )
    rows.append({"subject_id": "S1", "status": "no_face", "expression_offsets_model_mm": None})
    fits = _manifest(rows)
    deformations = expression_deformations_model_mm(fits, model)
    assert len(deformations.index) == 20 and 20 not in deformations.index  # the failed row
    assert (deformations.reference == REFERENCE_NEUTRAL).all()
    assert deformations.offsets_model_mm.dtype == np.float32
    neutral = deformations.offsets_model_mm[:10]
    assert np.abs(neutral).max() < 1e-4  # the stretch is gone where the face is neutral
    np.testing.assert_allclose(
        deformations.offsets_model_mm[10:], np.stack([smile] * 10), atol=1e-4
    )
    assert deformations.face_model_id == model.model_id


def test_reference_frames_are_the_lowest_share(model):
    # Neutral frames differ by a constant shift; the reference averages the lowest 20 %.
    rows = []
    for i in range(10):
        shift = np.full((N_VERTS, 3), float(i), dtype=np.float32)
        rows.append(
            {"subject_id": "S", "expression_offsets_model_mm": shift, "label_AU12": i * 0.1}
        )
    config = NeutralReferenceConfig(share=0.2)
    deformations = expression_deformations_model_mm(_manifest(rows), model, config)
    # Frames 0 and 1 (activation 0 and 0.1) make the reference: shift 0.5.
    np.testing.assert_allclose(deformations.offsets_model_mm[:, 0, 0], np.arange(10) - 0.5)


def test_fallbacks_to_fitted_offsets(model):
    field = np.full((N_VERTS, 3), 2.0, dtype=np.float32)
    rows = [
        {"subject_id": "single", "expression_offsets_model_mm": field, "label_AU12": 0.0},
        {"subject_id": "busy", "expression_offsets_model_mm": field, "label_AU12": 4.0},
        {"subject_id": "busy", "expression_offsets_model_mm": field * 2, "label_AU12": 5.0},
    ]
    deformations = expression_deformations_model_mm(_manifest(rows), model)
    assert deformations.reference.tolist() == [
        REFERENCE_SINGLE_FRAME,
        REFERENCE_NO_NEUTRAL,
        REFERENCE_NO_NEUTRAL,
    ]
    np.testing.assert_array_equal(deformations.offsets_model_mm[2], field * 2)


def test_activation_without_au_labels(model):
    small = np.full((N_VERTS, 3), 0.1, dtype=np.float32)  # RMS 0.17 mm: neutral enough
    large = np.full((N_VERTS, 3), 3.0, dtype=np.float32)
    rows = [
        # Valence/arousal: the calm frame is the reference.
        {"subject_id": "va", "expression_offsets_model_mm": large, "label_valence": 0.0,
         "label_arousal": 0.1},
        {"subject_id": "va", "expression_offsets_model_mm": small, "label_valence": 0.9,
         "label_arousal": 0.4},
        # Emotion: the neutral frame is the reference.
        {"subject_id": "emo", "expression_offsets_model_mm": large, "label_emotion": "Neutral"},
        {"subject_id": "emo", "expression_offsets_model_mm": small, "label_emotion": "happy"},
        # Nothing labelled: the fitted magnitude picks the small frame.
        {"subject_id": "fit", "expression_offsets_model_mm": large},
        {"subject_id": "fit", "expression_offsets_model_mm": small},
    ]  # fmt: skip
    fits = _manifest(rows)
    deformations = expression_deformations_model_mm(fits, model)
    first = deformations.offsets_model_mm[:, 0, 0]
    np.testing.assert_allclose(first, [0.0, -2.9, 0.0, -2.9, 2.9, 0.0], atol=1e-6)


def test_fit_expression_basis_on_a_manifest(model):
    from augmentface.simulate.disfa_like import disfa_like_fits

    fits = disfa_like_fits(model, n_subjects=3, frames_per_subject=120, seed=4)
    deformations = expression_deformations_model_mm(fits, model)
    basis = fit_expression_basis(deformations, variance=0.9, max_components=32)
    assert basis.face_model_id == model.model_id
    assert 2 <= basis.n_components <= 32
    assert basis.explained_variance_ratio.sum() >= 0.9


def test_bad_manifests(model):
    with pytest.raises(ExpressionSpaceError, match="subject_id"):
        expression_deformations_model_mm(pd.DataFrame({"status": ["ok"]}), model)
    fits = _manifest([{"subject_id": "S", "expression_offsets_model_mm": np.zeros(5)}])
    with pytest.raises(ExpressionSpaceError, match=r"\(468, 3\)"):
        expression_deformations_model_mm(fits, model)
    with pytest.raises(ExpressionSpaceError, match="share"):
        NeutralReferenceConfig(share=0.0)
