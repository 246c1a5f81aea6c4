"""Sparse localized deformation components (SPLOCS) of mesh animations.

Implements Neumann, Varanasi, Wenger, Wacker, Magnor & Theobalt, "Sparse localized deformation
components", ACM Trans. Graph. 32(6):179 (SIGGRAPH Asia 2013). Deformations ``X`` (F frames of
V vertices × 3) are factorised as ``X ≈ W C`` with weights ``W`` (F, K) and components ``C``
(K, V, 3) by minimising

    ½ ‖X − W C‖²_F + Σ_k Σ_v Λ_kv ‖C_kv‖₂   subject to   max_f |W_fk| = 1 (optionally W ≥ 0)

The ℓ1/ℓ2 group norm over each vertex's 3-vector makes components *sparse* (few vertices move),
and the per-vertex weights ``Λ_kv = λ · clip((d(centre_k, v) − d_min) / (d_max − d_min), 0, 1)``
make them *local*: no penalty within ``d_min`` of the component's centre (its vertex of largest
displacement), full penalty beyond ``d_max``, with ``d`` the geodesic distance along the mesh.

As in the paper: components are initialised greedily (vertex of largest residual energy, the
best rank-1 fit of its trajectory, restricted to its support), then the weights (block
coordinate descent, each projected onto the normalisation constraint) and the components (ADMM
with the ℓ1/ℓ2 proximal step) are updated in turn. The data are scaled to unit standard
deviation inside the solver so that ``λ`` means the same for any data set; the components come
back in the data's units (mm).

Geodesic distance is approximated by the shortest path along mesh edges (Dijkstra over edge
lengths), which overestimates the surface geodesic by a few per cent on a triangle mesh; the
support radii are soft bounds, so the difference does not matter here.

The solver is deterministic (the greedy initialisation involves no random choice), so it needs
no seed: the same data give the same components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import shortest_path

from augmentface.errors import UsageError


class SplocsConfigError(UsageError):
    """A SPLOCS setting is out of range, or the data do not match the mesh."""


@dataclass(frozen=True)
class SplocsConfig:
    """Settings of one SPLOCS fit.

    Attributes
    ----------
    n_components : int
        K, the number of components.
    sparsity_lambda : float
        λ, the weight of the ℓ1/ℓ2 penalty on data scaled to unit standard deviation
        (the paper's default is 2).
    support_min_mm, support_max_mm : float
        Geodesic radii (mm) around a component's centre: no penalty within ``support_min_mm``,
        full penalty beyond ``support_max_mm``, linear in between.
    n_iterations : int
        Outer alternations (weights, then components).
    n_admm_iterations : int
        ADMM steps per component update.
    admm_rho : float
        ADMM penalty parameter ρ.
    nonnegative_weights : bool
        Constrain weights to ``W ≥ 0`` (the paper's option); otherwise signed, ``max |W| = 1``.
        Signed suits data centred on a mean, as class models use.
    tolerance : float
        Stop when the objective changes by less than this fraction between outer iterations.
    """

    n_components: int = 4
    sparsity_lambda: float = 2.0
    support_min_mm: float = 20.0
    support_max_mm: float = 60.0
    n_iterations: int = 20
    n_admm_iterations: int = 10
    admm_rho: float = 10.0
    nonnegative_weights: bool = False
    tolerance: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_components < 1:
            raise SplocsConfigError(f"n_components must be ≥ 1, got {self.n_components}")
        if self.sparsity_lambda < 0:
            raise SplocsConfigError(f"sparsity_lambda must be ≥ 0, got {self.sparsity_lambda}")
        if not 0 <= self.support_min_mm < self.support_max_mm:
            raise SplocsConfigError(
                "need 0 ≤ support_min_mm < support_max_mm, got "
                f"{self.support_min_mm} and {self.support_max_mm}"
            )
        if self.n_iterations < 0 or self.n_admm_iterations < 1 or self.admm_rho <= 0:
            raise SplocsConfigError("need n_iterations ≥ 0, n_admm_iterations ≥ 1 and admm_rho > 0")


@dataclass(frozen=True)
class SplocsResult:
    """A fitted factorisation ``X ≈ weights @ components``.

    Attributes
    ----------
    components_model_mm : np.ndarray
        (K, V, 3) float64. Components in the data's units (mm, model frame).
    weights : np.ndarray
        (F, K) float64. Per-frame weights, ``max_f |weights[:, k]| = 1`` for non-zero ``k``.
    centers : np.ndarray
        (K,) int. Vertex of each component's largest displacement (its support centre).
    energy : np.ndarray
        (iterations + 1,) float64. Objective after the initialisation and each iteration,
        on the scaled data.
    relative_residual : float
        ``‖X − W C‖_F / ‖X‖_F`` of the result (0 for all-zero data).
    """

    components_model_mm: np.ndarray
    weights: np.ndarray
    centers: np.ndarray
    energy: np.ndarray
    relative_residual: float

    def reconstruct(self) -> np.ndarray:
        """(F, V, 3) the data as the components explain them, mm."""
        return np.tensordot(self.weights, self.components_model_mm, axes=1)


def graph_distances_mm(verts_model_mm: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """All-pairs shortest-path distances along the mesh edges.

    Parameters
    ----------
    verts_model_mm : np.ndarray
        (V, 3) vertex positions, mm.
    triangles : np.ndarray
        (T, 3) int vertex indices.

    Returns
    -------
    np.ndarray
        (V, V) float64 distances in mm; ``inf`` between vertices of separate components.
    """
    verts = np.asarray(verts_model_mm, dtype=np.float64)
    tris = np.asarray(triangles)
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    lengths = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1)
    n = len(verts)
    graph = sparse.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    return shortest_path(graph, method="D", directed=False)


def support_penalty(distances_from_center_mm: np.ndarray, config: SplocsConfig) -> np.ndarray:
    """(V,) penalty weight in [0, 1]: 0 within ``support_min_mm``, 1 beyond ``support_max_mm``."""
    lo, hi = config.support_min_mm, config.support_max_mm
    return (np.clip(distances_from_center_mm, lo, hi) - lo) / (hi - lo)


def _project_weights(w: np.ndarray, nonnegative: bool) -> np.ndarray:
    """Project onto the normalisation constraint: ``max |w| = 1`` (and ``w ≥ 0`` if asked)."""
    if nonnegative:
        w = np.maximum(w, 0.0)
    peak = np.abs(w).max(initial=0.0)
    return w / peak if peak > 0 else np.zeros_like(w)


def _prox_l1l2(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Group soft-thresholding of each vertex's 3-vector: the proximal map of Σ t‖x_v‖₂."""
    norms = np.linalg.norm(x, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(norms > 0, np.maximum(0.0, 1.0 - thresholds / norms), 0.0)
    return x * shrink[..., None]


def _centers(components: np.ndarray) -> np.ndarray:
    return np.linalg.norm(components, axis=2).argmax(axis=1)


def _objective(residual: np.ndarray, components: np.ndarray, lam: np.ndarray) -> float:
    return 0.5 * float((residual**2).sum()) + float(
        (lam * np.linalg.norm(components, axis=2)).sum()
    )


def _initialise(
    x: np.ndarray, distances: np.ndarray, config: SplocsConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy start: one component per step at the vertex the residual moves most."""
    n_frames, n_verts, _ = x.shape
    k_count = config.n_components
    weights = np.zeros((n_frames, k_count))
    components = np.zeros((k_count, n_verts, 3))
    residual = x.copy()
    for k in range(k_count):
        center = int((residual**2).sum(axis=(0, 2)).argmax())
        # Best rank-1 fit of that vertex's trajectory (F, 3): its dominant temporal profile.
        u, s, _ = np.linalg.svd(residual[:, center, :], full_matrices=False)
        profile = s[0] * u[:, 0]
        candidates = [
            _project_weights(sign * profile, config.nonnegative_weights) for sign in (1.0, -1.0)
        ]
        w = max(candidates, key=lambda c: float(np.linalg.norm(c)))
        norm2 = float(w @ w)
        if norm2 <= 1e-12:
            continue  # nothing left to explain
        inside = 1.0 - support_penalty(distances[center], config)
        ck = np.tensordot(w, residual, axes=1) / norm2 * inside[:, None]
        weights[:, k], components[k] = w, ck
        residual -= np.multiply.outer(w, ck)
    return weights, components


def fit_splocs(
    deformations_mm: np.ndarray, distances_mm: np.ndarray, config: SplocsConfig
) -> SplocsResult:
    """Fit K sparse localized deformation components.

    Parameters
    ----------
    deformations_mm : np.ndarray
        (F, V, 3) per-frame deformations, mm. Not centred here: pass data minus their mean to
        get components of variation about the mean.
    distances_mm : np.ndarray
        (V, V) geodesic (or graph, :func:`graph_distances_mm`) distances between vertices, mm.
    config : SplocsConfig
        Solver settings.

    Returns
    -------
    SplocsResult
        Components in mm, weights, support centres and the objective's history.

    Raises
    ------
    SplocsConfigError
        Shapes that disagree, or no frames.
    """
    x_mm = np.asarray(deformations_mm, dtype=np.float64)
    distances = np.asarray(distances_mm, dtype=np.float64)
    if x_mm.ndim != 3 or x_mm.shape[2] != 3 or len(x_mm) == 0:
        raise SplocsConfigError(f"deformations must be (F ≥ 1, V, 3), got {x_mm.shape}")
    n_frames, n_verts, _ = x_mm.shape
    if distances.shape != (n_verts, n_verts):
        raise SplocsConfigError(
            f"distances must be ({n_verts}, {n_verts}) for {n_verts} vertices, "
            f"got {distances.shape}"
        )
    k_count = config.n_components
    data_sd = float(x_mm.std())
    if data_sd == 0.0:
        return SplocsResult(
            np.zeros((k_count, n_verts, 3)),
            np.zeros((n_frames, k_count)),
            np.zeros(k_count, dtype=int),
            np.zeros(1),
            0.0,
        )
    # Unit standard deviation, so that one λ fits data of any amplitude (as in the paper).
    x = x_mm / data_sd
    x_flat = x.reshape(n_frames, -1)

    weights, components = _initialise(x, distances, config)
    lam = np.empty((k_count, n_verts))

    def update_lambda() -> None:
        for k, center in enumerate(_centers(components)):
            lam[k] = config.sparsity_lambda * support_penalty(distances[center], config)

    update_lambda()
    residual = x_flat - weights @ components.reshape(k_count, -1)
    energy = [_objective(residual, components, lam)]
    dual = np.zeros_like(components)
    rho = config.admm_rho
    for _ in range(config.n_iterations):
        # Weights: block coordinate descent, each column's least-squares optimum projected onto
        # the normalisation constraint.
        for k in range(k_count):
            ck = components[k].ravel()
            ck_norm2 = float(ck @ ck)
            residual += np.outer(weights[:, k], ck)
            if ck_norm2 <= 1e-12:
                weights[:, k] = 0.0
                continue
            weights[:, k] = _project_weights(residual @ ck / ck_norm2, config.nonnegative_weights)
            residual -= np.outer(weights[:, k], ck)
        update_lambda()
        # Components: ADMM on ½‖X − WC‖² + Σ Λ‖C_v‖ with the split C = Z.
        system = weights.T @ weights + rho * np.eye(k_count)
        wtx = weights.T @ x_flat
        z = components.copy()
        for _ in range(config.n_admm_iterations):
            c = np.linalg.solve(system, wtx + rho * (z - dual).reshape(k_count, -1))
            c = c.reshape(components.shape)
            z = _prox_l1l2(c + dual, lam / rho)
            dual += c - z
        components = z  # the sparse iterate: exact zeros outside the support
        residual = x_flat - weights @ components.reshape(k_count, -1)
        energy.append(_objective(residual, components, lam))
        if abs(energy[-2] - energy[-1]) <= config.tolerance * max(energy[-2], 1e-12):
            break

    return SplocsResult(
        components_model_mm=components * data_sd,
        weights=weights,
        centers=_centers(components),
        energy=np.asarray(energy),
        relative_residual=float(np.linalg.norm(residual) / np.linalg.norm(x_flat)),
    )
