"""Small reference datasets shipped with cgjax, made by :mod:`cgjax.reference`.

>>> from cgjax import datasets
>>> frames = datasets.load("spce_512")              # unwrapped COM positions, forces
>>> frames = datasets.load("spce_512", wrapped=True)  # positions in the primary cell
>>> ref = datasets.load_observables("spce_512")     # RDF, ADF, MSD, D, T (a dict)

``README.md`` beside this file gives each dataset's generating command and
contents; each file's ``provenance`` repeats them.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["DATASETS", "GRIDS", "MOLECULES", "available", "load", "load_grid", "load_observables",
           "path"]  # fmt: skip

DATASETS: dict[str, str] = {
    "spce_512": "512 SPC/E waters, 300 K, 0.997 g/cm^3; COM beads; 200 ps every 0.2 ps",
    "argon_864": "864 argon atoms (Rahman), 94.4 K, 1.374 g/cm^3; 100 ps every 0.2 ps",
    "methane_512": "512 AA methanes (paper 004), 111.7 K, 0.4228 g/cm^3; COM beads; "
    "100 ps every 0.2 ps",
}

#: State-point grids (``python -m cgjax.reference grid``): a folder with a manifest.
GRIDS: dict[str, str] = {
    "methanol_256_quick": "256 TraPPE-UA methanols at 200, 300, 400 K and 0.77 g/cm^3; COM "
    "beads; 100 ps every 0.4 ps per state point",
}

#: Molecules in free space (no box): CG beads of one molecule, many independent copies.
MOLECULES: dict[str, str] = {
    "alanine_dipeptide": "capped alanine (amber14 + OBC2), 300 K; paper 001's 6 beads; "
    "64 copies x 1.6 ns every 1 ps (no box)",
}


def available() -> tuple[str, ...]:
    """Names of the shipped datasets."""
    return tuple(DATASETS) + tuple(MOLECULES)


def _file(name: str, suffix: str):
    if name not in DATASETS and name not in MOLECULES:
        raise ValueError(
            f"unknown dataset {name!r}; shipped: {', '.join(DATASETS)}; "
            f"molecules: {', '.join(MOLECULES)}"
        )
    f = resources.files(__name__) / f"{name}{suffix}"
    if not f.is_file():
        raise FileNotFoundError(
            f"dataset file {f} is missing from this installation; regenerate it with "
            "scripts/make_shipped_data.sh (see cgjax/datasets/README.md)"
        )
    return f


def path(name: str):
    """The path of a dataset's ``.npz`` (a ``Traversable``; ``str()`` it for a file name)."""
    return _file(name, ".npz")


def load(name: str, *, wrapped: bool = False):
    """Loads a shipped dataset as :class:`cgjax.data.Frames`.

    Positions are stored unwrapped (continuous, for MSD); ``wrapped=True``
    moves them into the primary cell (for structure and training inputs).

    Args:
      name: one of :func:`available`.
      wrapped: wrap positions into the box.

    Returns:
      :class:`cgjax.data.Frames` with positions ``[T, N, 3]`` (nm), forces
      ``[T, N, 3]`` (kJ/mol/nm, float32), a fixed ``[3, 3]`` box, ``temperature``
      (K), ``dt`` (ps) and the generator's provenance.
    """
    from cgjax.data import Frames

    with resources.as_file(path(name)) as p:
        frames = Frames.load(p)
    return frames.wrapped() if wrapped else frames


def load_observables(name: str) -> dict:
    """The reference observables computed from a dataset (see README.md for the fields)."""
    return json.loads(_file(name, "_observables.json").read_text())


def load_grid(name: str, *, wrapped: bool = False) -> dict:
    """Loads a shipped state-point grid as ``{(T K, rho g/cm^3): Frames}``.

    Args:
      name: a key of :data:`GRIDS`.
      wrapped: wrap positions into the box.

    Returns:
      One :class:`cgjax.data.Frames` per state point (positions nm, forces
      kJ/mol/nm), keyed by the manifest's temperature and density.
    """
    from cgjax.data import Frames

    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; shipped: {', '.join(GRIDS)}")
    folder = resources.files(__name__) / name
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"grid {name} is missing from this installation; regenerate it with the command "
            "in cgjax/datasets/README.md"
        )
    out = {}
    for entry in json.loads(manifest.read_text())["points"].values():
        with resources.as_file(folder / entry["file"]) as p:
            frames = Frames.load(p)
        key = (float(entry["temperature_K"]), float(entry["density_g_per_cm3"]))
        out[key] = frames.wrapped() if wrapped else frames
    return out
