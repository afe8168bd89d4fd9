"""Free-energy surfaces of torsions (Ramachandran maps) and paper 001's noise baseline.

Angles in rad on ``[-pi, pi)``; free energies ``F = -kB T ln p`` in kJ/mol
(divide by ``units.kcal`` for kcal/mol), shifted so the lowest bin is 0.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. IV A,
  eqs. 14-15, Figs. 4-5 (60 x 60 bins; noise sigma in {0, 0.01, ..., 0.30} A).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Float

from cgjax import units
from cgjax._validation import check_weights
from cgjax.observables._metrics import free_energy_mse, kl_divergence
from cgjax.potentials._dihedral import check_torsions

__all__ = [
    "FES",
    "SIGMAS_A",
    "NoiseBaseline",
    "basin_populations",
    "equivalent_sigma",
    "fes_metrics",
    "free_energy_surface",
    "noise_baseline",
    "ramachandran",
    "torsions_of",
]

PHI = (0, 1, 2, 3)  # C(ACE)-N-CA-C in paper 001's bead order
PSI = (1, 2, 3, 4)  # N-CA-C-N(NME)
#: Paper 001's noise levels (Å): 0, 0.01, ..., 0.30.
SIGMAS_A = tuple(round(0.01 * k, 2) for k in range(31))


def torsions_of(positions: Float[np.ndarray, "T N 3"], torsions: Any) -> np.ndarray:
    """``[T, D]`` IUPAC dihedrals (rad, ``[-pi, pi]``) of free-space frames (nm).

    Raises:
      CollinearTorsionError: three particles of a torsion are collinear in a frame.
      ValueError: bad shapes or indices.
    """
    R = np.asarray(positions, np.float64)
    idx = np.asarray(torsions)
    if R.ndim != 3 or R.shape[-1] != 3:
        raise ValueError(f"positions must be [T, N, 3] (nm), got shape {R.shape}")
    if idx.ndim != 2 or idx.shape[1] != 4 or idx.min() < 0 or idx.max() >= R.shape[1]:
        raise ValueError(f"torsions must be [D, 4] indices below {R.shape[1]}, got {idx.tolist()}")
    check_torsions(R, idx)
    b1 = R[:, idx[:, 1]] - R[:, idx[:, 0]]
    b2 = R[:, idx[:, 2]] - R[:, idx[:, 1]]
    b3 = R[:, idx[:, 3]] - R[:, idx[:, 2]]
    n2 = np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * np.sum(b1 * n2, axis=-1)
    x = np.sum(np.cross(b1, b2) * n2, axis=-1)
    return np.arctan2(y, x)


def ramachandran(positions: Float[np.ndarray, "T N 3"], phi=PHI, psi=PSI) -> np.ndarray:
    """``[T, 2]`` (phi, psi) in rad of frames ``[T, N, 3]`` (nm); default paper 001's beads."""
    return torsions_of(positions, (phi, psi))


class FES(NamedTuple):
    """A histogram of angles and its free energy.

    Attributes:
      edges: ``[n_bins + 1]`` bin edges (rad), the same on every axis.
      counts: ``[n_bins]`` or ``[n_bins, n_bins]`` counts.
      free_energy: ``-kT ln p`` (kJ/mol), minimum 0, ``inf`` on empty bins.
      kT: kJ/mol.
    """

    edges: np.ndarray
    counts: np.ndarray
    free_energy: np.ndarray
    kT: float

    @property
    def free_energy_kcal(self) -> np.ndarray:
        """The free energy in kcal/mol."""
        return self.free_energy / units.kcal


def free_energy_surface(
    angles: Any, temperature_K: float, *, n_bins: int = 60, weights: Any = None
) -> FES:
    """1-D (angles ``[T]``) or 2-D (``[T, 2]``) free-energy surface on ``[-pi, pi)`` bins.

    Args:
      angles: rad.
      temperature_K: K.
      n_bins: bins per axis (paper 001: 60).
      weights: ``[T]`` sample weights (biased samples, :func:`frame_weights`);
        ``counts`` are then sums of weights. ``None``: all equal.
    """
    a = np.asarray(angles, np.float64)
    edges = np.linspace(-np.pi, np.pi, n_bins + 1)
    weights = check_weights(weights, a.shape[0])
    if a.ndim == 1:
        # histogramdd sums weights per bin (bincount); np.histogram with explicit edges
        # differences a cumulative sum, which rounds bins of tiny weights to 0
        counts, _ = np.histogramdd(a[:, None], bins=[edges], weights=weights)
    elif a.ndim == 2 and a.shape[1] == 2:
        counts, *_ = np.histogram2d(a[:, 0], a[:, 1], bins=(edges, edges), weights=weights)
    else:
        raise ValueError(f"angles must be [T] or [T, 2] (rad), got shape {a.shape}")
    if counts.sum() == 0:
        raise ValueError("no angles to histogram")
    kT = units.kB * float(temperature_K)
    with np.errstate(divide="ignore"):
        F = -kT * np.log(counts / counts.sum())
    return FES(edges, counts, F - F[np.isfinite(F)].min(), kT)


def fes_metrics(reference_counts: Any, counts: Any, kT: float) -> dict[str, float]:
    """Paper 001's KL divergence (nats) and bin free-energy MSE of a trial histogram.

    Returns:
      ``{"kl", "mse_kJ2_per_mol2", "mse_kcal2_per_mol2"}``; the MSE is over bins
      occupied in both.
    """
    kl = float(kl_divergence(np.asarray(reference_counts, float), np.asarray(counts, float)))
    mse = float(
        free_energy_mse(np.asarray(reference_counts, float), np.asarray(counts, float), kT=kT)
    )
    return {"kl": kl, "mse_kJ2_per_mol2": mse, "mse_kcal2_per_mol2": mse / units.kcal**2}


class NoiseBaseline(NamedTuple):
    """Metrics of the reference frames perturbed by Gaussian noise.

    Attributes:
      sigmas_A: ``[S]`` noise standard deviations (Å).
      kl: ``[n_seeds, S]`` KL divergences (nats).
      mse: ``[n_seeds, S]`` bin free-energy MSEs ((kJ/mol)^2).
      n_samples: frames per perturbed set.
    """

    sigmas_A: np.ndarray
    kl: np.ndarray
    mse: np.ndarray
    n_samples: int


def noise_baseline(
    positions: Float[np.ndarray, "T N 3"],
    temperature_K: float,
    *,
    n_samples: int,
    sigmas_A: Any = SIGMAS_A,
    n_seeds: int = 5,
    n_bins: int = 60,
    seed: int = 0,
    weights: Any = None,
) -> NoiseBaseline:
    """Paper 001's baseline: reference frames with ``N(0, sigma^2)`` noise on every coordinate.

    For each seed and sigma, ``n_samples`` frames drawn without replacement (as
    many as the CG set: KL has a sample-size floor) get the noise; their 2-D
    (phi, psi) histogram is compared with the whole reference's. Biased
    reference frames (``weights``) give a weighted reference histogram, and the
    ``n_samples`` frames are drawn with replacement with probabilities
    proportional to the weights: an unweighted set like a CG run's.

    Args:
      positions: ``[T, N, 3]`` reference frames (nm).
      temperature_K: K.
      n_samples: frames per perturbed set (``<= T``).
      sigmas_A: noise standard deviations (Å).
      n_seeds: independent noise draws (and frame subsets).
      n_bins: bins per axis.
      seed: first seed.
      weights: ``[T]`` frame weights (:func:`frame_weights`), or ``None``.
    """
    R = np.asarray(positions, np.float64)
    if not 0 < n_samples <= len(R):
        raise ValueError(f"n_samples must be in [1, {len(R)}], got {n_samples}")
    weights = check_weights(weights, len(R))
    ref = free_energy_surface(ramachandran(R), temperature_K, n_bins=n_bins, weights=weights)
    p = None if weights is None else weights / weights.sum()
    sig = np.asarray(sigmas_A, np.float64)
    kl, mse = np.zeros((n_seeds, len(sig))), np.zeros((n_seeds, len(sig)))
    for s in range(n_seeds):
        rng = np.random.default_rng(seed + s)
        pick = R[rng.choice(len(R), n_samples, replace=p is not None, p=p)]
        for j, sigma in enumerate(sig):
            noisy = pick + rng.normal(size=pick.shape) * sigma * units.angstrom
            fes = free_energy_surface(ramachandran(noisy), temperature_K, n_bins=n_bins)
            m = fes_metrics(ref.counts, fes.counts, ref.kT)
            kl[s, j], mse[s, j] = m["kl"], m["mse_kJ2_per_mol2"]
    return NoiseBaseline(sig, kl, mse, int(n_samples))


def equivalent_sigma(sigmas_A: Any, curve: Any, value: float) -> float:
    """The noise (Å) at which a baseline curve (mean over seeds) reaches ``value``.

    Linear interpolation at the first crossing; 0 below the curve's start and
    ``inf`` above its end (worse than the largest sigma).
    """
    s, c = np.asarray(sigmas_A, float), np.asarray(curve, float)
    if value <= c[0]:
        return 0.0
    above = np.flatnonzero(c >= value)
    if above.size == 0:
        return float("inf")
    j = int(above[0])
    return float(s[j - 1] + (value - c[j - 1]) * (s[j] - s[j - 1]) / (c[j] - c[j - 1]))


def basin_populations(phi_psi: Float[np.ndarray, "T 2"], weights: Any = None) -> dict[str, float]:
    """Fractions of frames in alanine's basins (phi, psi in rad), weighted by ``weights``.

    ``beta_C7eq``: phi < 0 and (psi > 50 deg or psi < -120 deg); ``alpha_R``:
    phi < 0 and -120 deg <= psi <= 50 deg; ``alpha_L``: phi >= 0 (with C7ax).
    """
    a = np.rad2deg(np.asarray(phi_psi, float))
    w = check_weights(weights, len(a))
    w = np.full(len(a), 1.0 / len(a)) if w is None else w / w.sum()
    left = a[:, 0] < 0
    beta = left & ((a[:, 1] > 50) | (a[:, 1] < -120))
    return {
        "beta_C7eq": float(w @ beta),
        "alpha_R": float(w @ (left & ~beta)),
        "alpha_L": float(w @ ~left),
    }
