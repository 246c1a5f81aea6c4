"""SPLOCS recovers planted sparse localized components and keeps them in their support."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from augmentface.expression.splocs import (
    SplocsConfig,
    SplocsConfigError,
    fit_splocs,
    graph_distances_mm,
    support_penalty,
)

# Left and right mouth corner, left and right brow, chin, nose tip: 60–170 mm apart.
CENTRES = (291, 61, 334, 105, 152, 4)
RADIUS_MM = 25.0


@pytest.fixture(scope="module")
def distances(model):
    return graph_distances_mm(model.mean_verts_model_mm, model.triangles)


def _planted(distances: np.ndarray, rng: np.random.Generator):
    """Components: a smooth bump of radius 25 mm along the mesh, in a random 3-D direction."""
    components, supports = [], []
    for centre in CENTRES:
        d = distances[centre]
        falloff = np.clip(1 - (d / RADIUS_MM) ** 2, 0, None) ** 2
        direction = rng.normal(size=3)
        components.append(4.0 * falloff[:, None] * direction / np.linalg.norm(direction))
        supports.append(d < RADIUS_MM)
    return np.stack(components), np.stack(supports)


def test_graph_distances(model, distances):
    assert distances.shape == (468, 468)
    assert np.allclose(distances, distances.T) and np.all(np.diag(distances) == 0)
    assert np.isfinite(distances).all()  # the canonical mesh is one piece
    # Along the surface is never shorter than straight through.
    verts = model.mean_verts_model_mm
    straight = np.linalg.norm(verts[:, None] - verts[None], axis=2)
    assert np.all(distances >= straight - 1e-9)


def test_recovers_planted_components(distances):
    rng = np.random.default_rng(1)
    planted, supports = _planted(distances, rng)
    k = len(planted)
    # Each frame activates about half of the components with signed weights, plus 0.1 mm noise.
    weights = rng.uniform(-1, 1, (600, k)) * (rng.random((600, k)) < 0.5)
    data = np.tensordot(weights, planted, 1) + rng.normal(0, 0.1, (600, 468, 3))

    result = fit_splocs(data, distances, SplocsConfig(n_components=k))

    flat_p = planted.reshape(k, -1)
    flat_r = result.components_model_mm.reshape(k, -1)
    cosine = np.abs(flat_p @ flat_r.T) / np.outer(
        np.linalg.norm(flat_p, axis=1), np.linalg.norm(flat_r, axis=1)
    )
    rows, cols = linear_sum_assignment(-cosine)
    # Measured: 0.9990–0.9998.
    assert cosine[rows, cols].min() >= 0.9
    for i, j in zip(rows, cols, strict=True):
        energy = (result.components_model_mm[j] ** 2).sum(axis=1)
        # Share of the component's energy outside the planted support; measured ≤ 0.2 %.
        assert energy[~supports[i]].sum() / energy.sum() < 0.01
    assert np.abs(result.weights).max() <= 1 + 1e-9
    assert np.all(np.diff(result.energy) <= 1e-6 * result.energy[0])  # objective never rises
    assert result.reconstruct().shape == data.shape
    assert result.relative_residual < 0.5  # the rest is the noise


def test_nonnegative_weights_and_zero_data(distances):
    rng = np.random.default_rng(2)
    planted, _ = _planted(distances, rng)
    weights = rng.uniform(0, 1, (200, len(planted)))
    data = np.tensordot(weights, planted, 1)
    result = fit_splocs(
        data, distances, SplocsConfig(n_components=3, nonnegative_weights=True, n_iterations=5)
    )
    assert result.weights.min() >= 0
    zero = fit_splocs(np.zeros((5, 468, 3)), distances, SplocsConfig(n_components=2))
    assert not zero.components_model_mm.any() and zero.relative_residual == 0


def test_support_penalty_and_config_errors(distances):
    config = SplocsConfig(support_min_mm=10, support_max_mm=30)
    assert support_penalty(np.array([0.0, 10.0, 20.0, 30.0, 99.0]), config).tolist() == [
        0.0, 0.0, 0.5, 1.0, 1.0]  # fmt: skip
    with pytest.raises(SplocsConfigError, match="support_min_mm"):
        SplocsConfig(support_min_mm=40, support_max_mm=30)
    with pytest.raises(SplocsConfigError, match="n_components"):
        SplocsConfig(n_components=0)
    with pytest.raises(SplocsConfigError, match="distances"):
        fit_splocs(np.zeros((3, 10, 3)), distances, SplocsConfig())
