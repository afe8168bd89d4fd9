"""Smooth cutoffs shared by every pair-based term.

One switching function serves all terms: it is 1 below ``r_onset``, 0 at and
beyond ``r_cutoff``, and its first and second derivatives vanish at both ends
(C2), so energy, force and the force's derivative are continuous at the
cutoff. With ``r_onset`` past the region that matters (e.g. beyond the LJ
minimum), the physics of a term is unchanged inside it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["check_cutoff", "smooth_switch"]


def smooth_switch(r: jax.Array, r_onset: float, r_cutoff: float) -> jax.Array:
    """C2 switch ``S(r)``: 1 for ``r <= r_onset``, 0 for ``r >= r_cutoff``.

    ``S = 1 - 10 x^3 + 15 x^4 - 6 x^5`` with ``x = (r - r_onset) / (r_cutoff - r_onset)``.

    Args:
      r: distances (nm), any shape.
      r_onset: where switching starts (nm); ``0 <= r_onset < r_cutoff``.
      r_cutoff: where the switch reaches 0 (nm).
    """
    x = jnp.clip((r - r_onset) / (r_cutoff - r_onset), 0.0, 1.0)
    return 1.0 - x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)


def check_cutoff(r_onset: float, r_cutoff: float, owner: str) -> None:
    """Raises ``ValueError`` unless ``0 <= r_onset < r_cutoff``."""
    if r_cutoff is None or not r_cutoff > 0:
        raise ValueError(f"{owner}: cutoff must be positive (nm), got {r_cutoff}")
    if not 0 <= r_onset < r_cutoff:
        raise ValueError(
            f"{owner}: r_onset must satisfy 0 <= r_onset < cutoff (nm), "
            f"got r_onset={r_onset}, cutoff={r_cutoff}"
        )
