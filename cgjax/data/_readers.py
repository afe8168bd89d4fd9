"""Readers for GROMACS and LAMMPS trajectories, through MDAnalysis (``cgjax[io]``).

MDAnalysis hands GROMACS data over in its base units (Å, ps, kJ/mol/Å, Å/ps,
amu) and LAMMPS dump columns as written (in the run's ``units`` style); both
are converted to cgjax units (nm, ps, kJ/mol/nm, nm/ps, amu) here. Arrays keep
the single precision MDAnalysis reads them in (float32).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from cgjax import units
from cgjax.data._frames import Frames, provenance

__all__ = ["LAMMPS_UNITS", "from_universe", "read_gromacs", "read_lammps_dump"]

# Size of each LAMMPS unit-style unit in cgjax units (see docs.lammps.org/units.html).
LAMMPS_UNITS = {
    "real": {
        "length": units.angstrom,
        "time": units.fs,
        "energy": units.kcal_per_mol,
        "mass": units.gram_per_mol,
    },
    "metal": {
        "length": units.angstrom,
        "time": units.ps,
        "energy": units.eV,
        "mass": units.gram_per_mol,
    },
    # SI energies are per particle (J); per mole that is N_A J.
    "si": {
        "length": units.m,
        "time": units.s,
        "energy": units.J * units.AVOGADRO,
        "mass": 1.0 / units.DALTON_SI,
    },
}


def _require_mdanalysis():
    try:
        import MDAnalysis
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading GROMACS and LAMMPS files needs MDAnalysis: pip install 'cgjax[io]'"
        ) from e
    return MDAnalysis


def _species(labels: np.ndarray) -> tuple[np.ndarray, dict]:
    """Integer species from string labels, numbered in sorted order (numerically
    when every label is an integer, as LAMMPS types are)."""
    labels = np.asarray(labels).astype(str)
    names = np.unique(labels)
    if names.size and all(n.lstrip("-").isdigit() for n in names):
        names = names[np.argsort(names.astype(np.int64), kind="stable")]
    lookup = {n: i for i, n in enumerate(names.tolist())}
    return np.array([lookup[x] for x in labels], dtype=np.int32), lookup


def _labels(atoms, species_from: str) -> np.ndarray:
    attr = {"type": "types", "name": "names", "element": "elements"}.get(species_from)
    if attr is None:
        raise ValueError(f"species_from must be 'type', 'name' or 'element', got {species_from!r}")
    try:
        return np.asarray(getattr(atoms, attr))
    except Exception as e:  # MDAnalysis raises NoDataError (an AttributeError/ValueError)
        raise ValueError(f"the topology has no atom {attr}; choose another species_from") from e


def _masses(masses: Any, default: Any, names: dict, species: np.ndarray, hint: str) -> np.ndarray:
    """Masses (amu) from ``masses`` ({species name: amu} or [N]) or the topology's."""
    n = len(species)
    if masses is None:
        if default is None:
            raise ValueError(f"masses: {hint}; pass masses={{name: amu}} or an [N] array (amu)")
        m = np.asarray(default, dtype=np.float64)
        if m.shape != (n,) or not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise ValueError(
                f"masses: the topology's masses are missing or not positive ({hint}); "
                "pass masses={name: amu} or an [N] array (amu)"
            )
        return m
    if isinstance(masses, dict):
        given = {str(k): float(v) for k, v in masses.items()}
        missing = sorted(set(names) - set(given))
        if missing:
            raise ValueError(f"masses has no entry for species {missing} (names: {sorted(names)})")
        by_species = np.array([given[name] for name in names], dtype=np.float64)
        return by_species[species]
    m = np.asarray(masses, dtype=np.float64)
    if m.shape != (n,):
        raise ValueError(f"masses must be a dict or have shape [N] = [{n}] (amu), got {m.shape}")
    return m


def _box_columns(dimensions: np.ndarray, length: float) -> np.ndarray | None:
    """``[T, 6]`` MDAnalysis cells ``(a, b, c, alpha, beta, gamma)`` -> ``[3, 3]`` or
    ``[T, 3, 3]`` matrices with box vectors as columns, lengths scaled by ``length``."""
    from MDAnalysis.lib.mdamath import triclinic_vectors

    if dimensions is None or np.any(np.isnan(dimensions)) or np.any(dimensions[:, :3] <= 0):
        return None
    rows = np.stack([triclinic_vectors(d).astype(np.float64) for d in dimensions])
    boxes = np.swapaxes(rows, 1, 2) * length
    return boxes[0] if np.all(boxes == boxes[:1]) else boxes


def _collect(universe) -> dict:
    """Every frame's arrays as MDAnalysis gives them."""
    pos, vel, frc, dims, times, steps = [], [], [], [], [], []
    has_v, has_f = [], []
    for ts in universe.trajectory:
        pos.append(ts.positions.copy())
        has_v.append(ts.has_velocities)
        has_f.append(ts.has_forces)
        if ts.has_velocities:
            vel.append(ts.velocities.copy())
        if ts.has_forces:
            frc.append(ts.forces.copy())
        dims.append(np.full(6, np.nan) if ts.dimensions is None else ts.dimensions.copy())
        times.append(ts.time)
        steps.append(ts.data.get("step", -1))
    for name, flags in (("velocities", has_v), ("forces", has_f)):
        if any(flags) and not all(flags):
            missing = [i for i, f in enumerate(flags) if not f]
            raise ValueError(
                f"{name} are saved in some frames but not in frames {missing[:10]}; write "
                f"them with every frame (GROMACS: nstvout/nstfout equal to nstxout) or read "
                "a trajectory that has them throughout"
            )
    return {
        "positions": np.stack(pos),
        "velocities": np.stack(vel) if vel else None,
        "forces": np.stack(frc) if frc else None,
        "dimensions": np.stack(dims).astype(np.float64),
        "times": np.asarray(times, dtype=np.float64),
        "steps": np.asarray(steps, dtype=np.int64),
    }


def _dt(times: np.ndarray) -> float | None:
    if len(times) < 2:
        return None
    steps = np.diff(times)
    if steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        return float(steps[0])
    return None


def _molecule_index(atoms) -> tuple[list | None, str | None]:
    for attr, source in (("molnums", "molnums"), ("resindices", "residues")):
        try:
            return np.asarray(getattr(atoms, attr)).tolist(), source
        except Exception:
            continue
    return None, None


def from_universe(
    universe,
    *,
    masses: Any = None,
    species_from: str = "type",
    generator: str = "cgjax.data.from_universe",
    **provenance_extra: Any,
) -> Frames:
    """Frames from an MDAnalysis ``Universe`` whose reader converts to MDAnalysis
    base units (Å, ps, kJ/mol/Å, Å/ps), as the GROMACS, AMBER, DCD, ... readers do.

    Args:
      universe: an ``MDAnalysis.Universe``.
      masses: ``{species name: amu}`` or ``[N]`` (amu); default the topology's.
      species_from: ``"type"``, ``"name"`` or ``"element"``: the atom attribute
        whose distinct values become species ``0, 1, ...`` (sorted);
        ``metadata["species_names"]`` maps each value to its integer.
      generator, provenance_extra: recorded in the provenance.

    Returns:
      Frames with positions (nm), velocities (nm/ps) and forces (kJ/mol/nm)
      where the trajectory has them in every frame, the box per frame (or one
      box when it never changes), ``times`` (ps), ``dt`` when evenly spaced, and
      metadata ``species_names``, ``atom_names``, ``molecule_index`` (GROMACS
      ``molnums`` from a ``.tpr``, else residues) and ``molecule_index_source``.
    """
    atoms = universe.atoms
    species, names = _species(_labels(atoms, species_from))
    try:
        default = atoms.masses
    except Exception:
        default = None
    m = _masses(masses, default, names, species, "the topology has no usable masses")
    raw = _collect(universe)
    metadata = {"species_names": names, "species_from": species_from}
    try:
        metadata["atom_names"] = np.asarray(atoms.names).astype(str).tolist()
    except Exception:
        pass
    molecule_index, source = _molecule_index(atoms)
    if molecule_index is not None:
        metadata["molecule_index"] = molecule_index
        metadata["molecule_index_source"] = source
    return Frames(
        raw["positions"] * np.float32(units.angstrom),
        species,
        m,
        forces=None if raw["forces"] is None else raw["forces"] / np.float32(units.angstrom),
        velocities=None
        if raw["velocities"] is None
        else raw["velocities"] * np.float32(units.angstrom / units.ps),
        box=_box_columns(raw["dimensions"], units.angstrom),
        times=raw["times"],
        dt=_dt(raw["times"]),
        provenance=provenance(generator, **provenance_extra),
        metadata=metadata,
    )


def _source(path) -> dict:
    path = os.path.abspath(os.fspath(path))
    return {"path": path, "bytes": os.path.getsize(path)}


def read_gromacs(
    trajectory: str | os.PathLike,
    topology: str | os.PathLike,
    *,
    masses: Any = None,
    species_from: str = "type",
) -> Frames:
    """Reads a GROMACS trajectory with its topology.

    ``.trr`` gives positions, and velocities and forces where saved in every
    frame; ``.xtc`` gives positions only (compressed, by default to 0.001 nm).
    A ``.tpr`` topology gives exact masses, force-field atom types and
    molecules; with a ``.gro``, MDAnalysis guesses types and masses from atom
    names (pass ``masses`` to be sure) and molecules are residues.

    Args:
      trajectory: ``.trr`` or ``.xtc`` path.
      topology: ``.tpr`` or ``.gro`` path.
      masses, species_from: see :func:`from_universe`.

    Returns:
      Frames in cgjax units (see :func:`from_universe`).

    Raises:
      ImportError: without MDAnalysis (``pip install 'cgjax[io]'``).
      ValueError: if masses are unknown, or forces/velocities are in only
        some frames.
    """
    mda = _require_mdanalysis()
    universe = mda.Universe(os.fspath(topology), os.fspath(trajectory))
    return from_universe(
        universe,
        masses=masses,
        species_from=species_from,
        generator="cgjax.data.read_gromacs",
        trajectory=_source(trajectory),
        topology=_source(topology),
    )


def _dump_columns(path: str) -> list[str]:
    from MDAnalysis.lib.util import anyopen

    with anyopen(path) as f:
        for _ in range(8):
            f.readline()
        header = f.readline().split()
    if header[:2] != ["ITEM:", "ATOMS"]:
        raise ValueError(f"{path}: line 9 should be 'ITEM: ATOMS ...', got {' '.join(header)!r}")
    return header[2:]


def read_lammps_dump(
    path: str | os.PathLike,
    *,
    units: str = "real",
    masses: Any = None,
    species_from: str = "type",
    timestep: float | None = None,
    coordinates: str = "auto",
) -> Frames:
    """Reads a LAMMPS text dump (``dump atom custom`` with ``id type x y z fx fy fz``).

    Coordinates may be ``x y z``, scaled ``xs ys zs``, or unwrapped ``xu yu zu``
    (``coordinates`` picks one; ``"auto"`` takes the first present in that
    order); ``vx vy vz`` and ``fx fy fz`` are read when present. MDAnalysis
    moves the box's lower corner to the origin, so positions are relative to
    ``(xlo, ylo, zlo)``. Atoms are ordered by ``id``.

    Args:
      path: the dump file (may be gzipped).
      units: the LAMMPS ``units`` style of the run: ``"real"`` (Å, fs,
        kcal/mol, g/mol), ``"metal"`` (Å, ps, eV, g/mol) or ``"si"`` (m, s, J,
        kg). Values are converted to cgjax units, e.g. a ``real`` force of
        1 kcal/mol/Å becomes 41.84 kJ/mol/nm.
      masses: ``{type: amu}`` or ``[N]`` (amu, cgjax units). Default: the
        dump's ``mass`` column (in the style's units), else masses MDAnalysis
        guesses from an ``element`` column; without either, masses are required.
      species_from: ``"type"`` (numbered in numeric type order) or ``"element"``.
      timestep: the run's ``timestep`` in the style's time unit (fs for
        ``real``); with it frame times are ``step * timestep`` (ps).
      coordinates: ``"auto"``, ``"unscaled"``, ``"scaled"``, ``"unwrapped"``
        or ``"scaled_unwrapped"``.

    Returns:
      Frames in cgjax units; metadata has ``species_names``, ``lammps_units``,
      ``steps`` and, with a ``mol`` column, ``molecule_index``.

    Raises:
      ImportError: without MDAnalysis (``pip install 'cgjax[io]'``).
      ValueError: for an unknown unit style, a malformed header, or missing masses.
    """
    mda = _require_mdanalysis()
    if units not in LAMMPS_UNITS:
        raise ValueError(
            f"units must be one of {sorted(LAMMPS_UNITS)} (the LAMMPS units style), got {units!r}"
        )
    style = LAMMPS_UNITS[units]
    path = os.fspath(path)
    columns = _dump_columns(path)
    with warnings.catch_warnings():
        # Masses are handled below; MDAnalysis's fallback of 1.0 would be silent.
        warnings.filterwarnings("ignore", message="Guessed all Masses to 1.0")
        warnings.filterwarnings("ignore", message="No mass column found")
        universe = mda.Universe(
            path,
            format="LAMMPSDUMP",
            topology_format="LAMMPSDUMP",
            lammps_coordinate_convention=coordinates,
            dt=1.0,
        )
    atoms = universe.atoms
    species, names = _species(_labels(atoms, species_from))
    if "mass" in columns:
        default = np.asarray(atoms.masses, np.float64) * style["mass"]
    elif "element" in columns:
        default = np.asarray(atoms.masses, np.float64)
    else:
        default = None
    m = _masses(masses, default, names, species, f"{path} has no mass or element column")
    raw = _collect(universe)
    length, time = style["length"], style["time"]
    force = style["energy"] / length
    times = None if timestep is None else raw["steps"] * float(timestep) * time
    metadata = {
        "species_names": names,
        "species_from": species_from,
        "lammps_units": units,
        "steps": raw["steps"].tolist(),
    }
    if "mol" in columns:
        metadata["molecule_index"] = np.asarray(atoms.resids).tolist()
        metadata["molecule_index_source"] = "mol"
    return Frames(
        raw["positions"] * np.float32(length),
        species,
        m,
        forces=None if raw["forces"] is None else raw["forces"] * np.float32(force),
        velocities=None
        if raw["velocities"] is None
        else raw["velocities"] * np.float32(length / time),
        box=_box_columns(raw["dimensions"], length),
        times=times,
        dt=None if times is None else _dt(times),
        provenance=provenance(
            "cgjax.data.read_lammps_dump", source=_source(path), units=units, timestep=timestep
        ),
        metadata=metadata,
    )
