"""Reweighting frames sampled under a bias on one torsion of the beads.

Reference data may be sampled with a bias ``V(phi)`` (kJ/mol) on a torsion of
the CG beads (e.g. alanine's phi, to cross its barrier; see
``python -m cgjax.reference alanine --metad``). Because ``phi`` is a function
of the bead positions, the bias leaves the distribution of the atoms given the
beads unchanged: mapped forces stay mean-force samples and force matching needs
no weights; distributions (free-energy surfaces, histograms behind priors) need
the weights ``w ∝ exp(V(phi) / kB T)`` (Boltzmann over biased).

The bias is stored with the frames (``metadata["bias"]``, :meth:`TorsionBias.to_json`),
so weights always follow from the frames' own positions (any subset of frames).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cgjax import units

__all__ = ["TorsionBias", "effective_sample_size", "frame_weights"]


class TorsionBias(NamedTuple):
    """``V(phi) = sum_m cos_m cos(m phi) + sin_m sin(m phi)`` (kJ/mol), ``m = 1..M``.

    Attributes:
      torsion: the four bead indices of ``phi`` (IUPAC dihedral, rad).
      cos: ``[M]`` cosine coefficients (kJ/mol).
      sin: ``[M]`` sine coefficients (kJ/mol).
    """

    torsion: tuple[int, int, int, int]
    cos: np.ndarray
    sin: np.ndarray

    @classmethod
    def zero(cls, torsion: Any, order: int) -> TorsionBias:
        """No bias yet, ``order`` harmonics."""
        return cls(tuple(int(i) for i in torsion), np.zeros(order), np.zeros(order))

    @property
    def order(self) -> int:
        return len(self.cos)

    def energy(self, phi: Any) -> np.ndarray:
        """``V(phi)`` (kJ/mol) at angles ``phi`` (rad), any shape."""
        phi = np.asarray(phi, np.float64)
        m = np.arange(1, self.order + 1)
        mp = phi[..., None] * m
        return np.cos(mp) @ np.asarray(self.cos) + np.sin(mp) @ np.asarray(self.sin)

    def add_gaussians(self, centres: Any, heights: Any, width: float) -> TorsionBias:
        """The bias plus periodic Gaussians ``h exp(-(phi - c)^2 / (2 width^2))``.

        Each Gaussian enters through its Fourier series truncated at ``order``
        (the constant term dropped: it shifts no force). Args: ``centres`` (rad),
        ``heights`` (kJ/mol), one per Gaussian; ``width`` (rad).
        """
        c, h = np.asarray(centres, np.float64).ravel(), np.asarray(heights, np.float64).ravel()
        m = np.arange(1, self.order + 1)
        # wrapped Gaussian: (w / sqrt(2 pi)) * 2 exp(-m^2 w^2 / 2) cos(m (phi - c))
        amp = width * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (m * width) ** 2)
        mc = c[:, None] * m
        return self._replace(
            cos=self.cos + amp * (h @ np.cos(mc)), sin=self.sin + amp * (h @ np.sin(mc))
        )

    def openmm_expression(self) -> str:
        """The bias as an OpenMM ``CustomTorsionForce`` expression of ``theta``, with
        global parameters ``bias_cos1..M`` and ``bias_sin1..M`` (kJ/mol)."""
        return "+".join(
            f"bias_cos{m}*cos({m}*theta)+bias_sin{m}*sin({m}*theta)"
            for m in range(1, self.order + 1)
        )

    def openmm_parameters(self) -> dict[str, float]:
        """``{"bias_cos1": ..., "bias_sin1": ..., ...}`` for ``Context.setParameter``."""
        out = {}
        for m in range(self.order):
            out[f"bias_cos{m + 1}"] = float(self.cos[m])
            out[f"bias_sin{m + 1}"] = float(self.sin[m])
        return out

    def to_json(self) -> dict:
        return {
            "form": "V(phi) = sum_m cos[m-1] cos(m phi) + sin[m-1] sin(m phi), kJ/mol, phi rad",
            "torsion": list(self.torsion),
            "cos": [float(x) for x in self.cos],
            "sin": [float(x) for x in self.sin],
        }

    @classmethod
    def from_json(cls, d: dict) -> TorsionBias:
        """Inverse of :meth:`to_json`; ``ValueError`` names a missing or bad key."""
        try:
            torsion = tuple(int(i) for i in d["torsion"])
            cos, sin = np.asarray(d["cos"], np.float64), np.asarray(d["sin"], np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bias metadata needs 'torsion' (4 ints), 'cos', 'sin': {e}") from e
        if len(torsion) != 4 or cos.ndim != 1 or cos.shape != sin.shape:
            raise ValueError(
                f"bias metadata: torsion must be 4 bead indices and cos, sin of one length "
                f"[M], got torsion {list(torsion)}, cos {cos.shape}, sin {sin.shape}"
            )
        return cls(torsion, cos, sin)


def frame_weights(frames: Any, *, temperature_K: float | None = None) -> np.ndarray | None:
    """Boltzmann weights of biased frames, ``exp(V(phi) / kB T)`` normalised to mean 1.

    Args:
      frames: :class:`cgjax.data.Frames`; their ``metadata["bias"]`` (a
        :meth:`TorsionBias.to_json` dict) says which bias they were sampled under.
      temperature_K: K; default the frames' temperature.

    Returns:
      ``[T]`` weights, or ``None`` when the frames carry no bias (all weights equal).

    Raises:
      ValueError: a bias without a temperature, or malformed bias metadata.
    """
    meta = frames.metadata or {}
    if "bias" not in meta:
        return None
    bias = TorsionBias.from_json(meta["bias"])
    T = frames.temperature if temperature_K is None else temperature_K
    if T is None:
        raise ValueError("frame_weights: biased frames need a temperature (K)")
    from cgjax.observables._fes import torsions_of

    V = bias.energy(torsions_of(frames.positions, [bias.torsion])[:, 0])
    logw = (V - V.max()) / (units.kB * float(T))
    w = np.exp(logw)
    return w / w.mean()


def effective_sample_size(weights: Any) -> float:
    """Kish's ``(sum w)^2 / sum w^2``: how many unweighted samples the weights are worth."""
    w = np.asarray(weights, np.float64)
    return float(w.sum() ** 2 / np.sum(w * w))
