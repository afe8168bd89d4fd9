"""Input checks shared by every public entry point.

Each check raises ``ValueError`` whose message names the array (or file, or
key) and says what was expected. Value checks (finiteness, ranges) run only on
concrete arrays: under ``jit`` the values are not known, and the simulation
runner checks them at chunk boundaries instead. Shape checks always run.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = [
    "check_finite",
    "check_positions",
    "check_species",
    "is_concrete",
    "settings_from_config",
]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def check_finite(x: Any, name: str) -> None:
    """Raises ``ValueError`` if a concrete array has NaN or inf entries."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.number):
        return
    bad = ~np.isfinite(a)
    if bad.any():
        where = np.argwhere(bad)
        first = [tuple(int(i) for i in w) for w in where[:5]]
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite (NaN or inf) entries, first at index {first}"
        )


def check_positions(R: Any, n_particles: int | None = None, name: str = "positions R") -> None:
    """Checks positions of shape ``[N, 3]`` (nm): trailing shape, count, finiteness."""
    shape = getattr(R, "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] != 3:
        raise ValueError(f"{name} must have shape [N, 3] (nm), got shape {shape}")
    if n_particles is not None and shape[0] != n_particles:
        raise ValueError(
            f"{name} has {shape[0]} particles but the system has {n_particles} "
            "(species array length)"
        )
    check_finite(R, name)


def check_species(species: Any, n_species: int | None, name: str = "species") -> np.ndarray:
    """Checks an integer species array ``[N]`` with entries in ``[0, n_species)``.

    Returns:
      the species as a numpy int32 array.
    """
    s = np.asarray(species)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D integer array [N], got shape {s.shape}")
    if s.size and not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {s.dtype}")
    if s.size and s.min() < 0:
        raise ValueError(f"{name} has negative entries (min {s.min()})")
    if n_species is not None and s.size and s.max() >= n_species:
        raise ValueError(
            f"{name} has index {int(s.max())} out of range: the potential knows "
            f"n_species = {n_species} species (indices 0..{n_species - 1})"
        )
    return s.astype(np.int32)


def check_weights(weights: Any, n: int, name: str = "weights") -> np.ndarray | None:
    """``[n]`` sample weights as float64 (finite, >= 0, positive sum), or ``None``.

    Raises:
      ValueError: naming ``name`` and the expected shape.
    """
    if weights is None:
        return None
    w = np.asarray(weights, np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(
            f"{name} must be [T] = [{n}] finite, non-negative values with a positive sum, "
            f"got shape {w.shape}"
        )
    return w


def settings_from_config(cls: type, section: Any, fixed: dict) -> Any:
    """A frozen settings dataclass ``cls`` from a config section plus ``fixed`` fields.

    The section's keys that name a field are used; its other keys belong to the
    stage and are ignored. ``fixed`` supplies fields the section does not hold;
    a field given in both, or a ``fixed`` name that is no field, is an error,
    so a config cannot silently disagree with the code.

    Raises:
      ValueError: naming ``cls`` and the fields.
    """
    import dataclasses

    items = dict(section.items()) if hasattr(section, "items") else dict(vars(section))
    names = {f.name for f in dataclasses.fields(cls)}
    both = sorted(names & set(items) & set(fixed))
    if both:
        raise ValueError(
            f"{cls.__name__}.from_config: {both} set both in the config section and by the caller"
        )
    unknown = sorted(set(fixed) - names)
    if unknown:
        raise ValueError(
            f"{cls.__name__}.from_config: unknown fields {unknown}; fields: {sorted(names)}"
        )
    return cls(**{k: v for k, v in items.items() if k in names}, **fixed)
