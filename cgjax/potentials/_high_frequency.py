"""The high-frequency landscape term ``A sin(omega r) / r^2``."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from cgjax.potentials._base import PairTerm

__all__ = ["HighFrequency", "high_frequency"]


def high_frequency(r: jax.Array, amplitude: jax.Array, omega: jax.Array) -> jax.Array:
    """``A sin(omega r) / r^2`` (kJ/mol).

    ``r`` in nm, ``A`` in kJ/mol nm^2, ``omega`` in 1/nm.
    """
    return amplitude * jnp.sin(omega * r) / (r * r)


class HighFrequency(PairTerm):
    """High-frequency PES term ``A sin(omega r) / r^2`` that slows CG dynamics.

    Parameters are the scalars ``{"amplitude": A, "omega": omega}`` (kJ/mol nm^2
    and 1/nm), shared by the species pairs it acts on. At large ``omega``
    (> ~50 1/A = 500 1/nm) it leaves the RDF unchanged while its barriers slow
    diffusion, which is what the dynamics-tuning bisection on ``amplitude`` uses.

    Attributes:
      amplitude: initial ``A`` (kJ/mol nm^2). Paper 004 brackets it in
        [0, 0.2 eV A^2] = [0, 0.193] kJ/mol nm^2.
      omega: initial ``omega`` (1/nm); paper 004 uses 100 1/A = 1000 1/nm.
      pairs: species pairs it acts on, ``((a, b), ...)``; ``None`` for all.

    References:
      Paper 004 eq. 8 and §2.3.
    """

    amplitude: float = 0.0
    omega: float = 1000.0
    pairs: tuple[tuple[int, int], ...] | None = None
    cutoff: float = 0.6
    default_name: ClassVar[str] = "hf"

    def kernel(self, r, *, amplitude, omega):
        return high_frequency(r, amplitude, omega)

    def tables(self):
        return {
            "amplitude": self.param(
                "amplitude", lambda _: jnp.asarray(self.amplitude, self.param_dtype)
            ),
            "omega": self.param("omega", lambda _: jnp.asarray(self.omega, self.param_dtype)),
        }

    def active_pairs(self):
        if self.pairs is None:
            return None
        m = np.zeros((self.n_species, self.n_species), bool)
        for a, b in self.pairs:
            if not (0 <= a < self.n_species and 0 <= b < self.n_species):
                raise ValueError(
                    f"HighFrequency.pairs has ({a}, {b}) outside n_species={self.n_species}"
                )
            m[a, b] = m[b, a] = True
        return m
