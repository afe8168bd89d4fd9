"""Reference runs on a grid of state points (temperature x density), resumable, with a manifest.

    python -m cgjax.reference grid --system methanol --temperatures 200 300 400 \\
        --densities 0.77 --molecules 256 --out data/methanol_grid

or ``--grid FILE.json`` holding the same fields (``system``, ``temperatures`` and
``densities``, or ``points`` as ``[[T, rho], ...]``, and any
:class:`GridSpec` setting). Every state point becomes one CG ``.npz`` in the
output directory, written atomically when its run has finished, and an entry in
``manifest.json`` (rewritten atomically after each point). A rerun of the same
command skips the points already done, so a killed grid resumes where it was.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from typing import Any

import numpy as np

from cgjax import units
from cgjax.reference._systems import SYSTEMS, BoxTooSmallError, Molecule, box_length

__all__ = [
    "GridSpec",
    "PackingError",
    "UnknownMoleculeError",
    "generate_grid",
    "load_grid",
    "packing_fraction",
    "point_name",
]

MANIFEST = "manifest.json"

#: Nominal packing fraction (the molecules' union of LJ spheres of diameter
#: sigma over the box volume) above which a lattice start cannot be relaxed.
#: The paper's densest points are ~0.8 (methanol at 1.27 g/cm^3, benzene at
#: 1.06); 1.0 means the LJ cores alone would fill the box.
MAX_PACKING_FRACTION = 1.0


class UnknownMoleculeError(ValueError):
    """A grid (or config) names a molecule that is not in :data:`SYSTEMS`."""


class PackingError(ValueError):
    """A density at which the molecules' LJ cores cannot fit in the box."""


def _union_volume(mol: Molecule, n_grid: int = 48) -> float:
    """Volume (nm^3) of the union of the molecule's LJ spheres (diameter sigma), on a grid."""
    x = mol.centred_geometry()
    r = np.asarray(mol.sigmas) / 2
    keep = np.asarray(mol.epsilons) > 0
    x, r = x[keep], r[keep]
    lo, hi = (x - r[:, None]).min(0), (x + r[:, None]).max(0)
    axes = [np.linspace(a, b, n_grid) for a, b in zip(lo, hi, strict=True)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    inside = (np.linalg.norm(pts[:, None] - x[None], axis=-1) < r[None]).any(1)
    cell = np.prod((hi - lo) / (n_grid - 1))
    return float(inside.sum() * cell)


def packing_fraction(system: str, density: float) -> float:
    """Molecules' LJ-core volume per box volume at ``density`` (g/cm^3); dimensionless."""
    mol = SYSTEMS[system].molecule
    number_density = density * units.g_per_cm3 / mol.mass  # 1/nm^3
    return number_density * _union_volume(mol)


def point_name(system: str, temperature: float, density: float) -> str:
    """File stem of a state point, e.g. ``methanol_T300_rho0.77``."""
    return f"{system}_T{temperature:g}_rho{density:g}"


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """A grid of NVT reference runs of one molecule.

    Attributes:
      system: a key of :data:`~cgjax.reference.SYSTEMS`.
      points: ``((T K, rho g/cm^3), ...)`` state points.
      n_molecules: molecules per box (``None``: the system's default).
      equilibration, nh_equilibration, production, save_every: ps (see
        :class:`GenerationConfig`).
      dt: time step (fs; ``None``: the system's default).
      cutoff: real-space cutoff (nm; ``None``: the system's default).
      seed: point ``k`` of :attr:`points` is run with seed ``seed + k``.
      platform, threads: OpenMM platform and CPU threads.
      dtype: saved arrays' dtype.
      velocities: also save COM velocities.
    """

    system: str
    points: tuple[tuple[float, float], ...]
    n_molecules: int | None = None
    equilibration: float = 20.0
    nh_equilibration: float = 20.0
    production: float = 50.0
    save_every: float = 0.2
    dt: float | None = None
    cutoff: float | None = None
    seed: int = 0
    platform: str = "CPU"
    threads: int | None = None
    dtype: str = "float32"
    velocities: bool = False

    @classmethod
    def product(cls, system: str, temperatures, densities, **settings) -> GridSpec:
        """Every temperature (K) at every density (g/cm^3), densities outermost."""
        pts = tuple((float(t), float(d)) for d, t in itertools.product(densities, temperatures))
        return cls(system=system, points=pts, **settings)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> GridSpec:
        """A spec from JSON: ``system`` and ``points`` or ``temperatures`` x ``densities``."""
        with open(path) as f:
            d = json.load(f)
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = set(d) - fields - {"temperatures", "densities"}
        if extra:
            raise ValueError(f"{path}: unknown grid keys {sorted(extra)}")
        if "system" not in d:
            raise ValueError(f"{path}: the grid names no 'system'")
        if "points" in d:
            d["points"] = tuple((float(t), float(r)) for t, r in d["points"])
            return cls(**d).checked()
        temps, dens = d.pop("temperatures", None), d.pop("densities", None)
        if temps is None or dens is None:
            raise ValueError(f"{path}: give 'points' or both 'temperatures' and 'densities'")
        return cls.product(d.pop("system"), temps, dens, **d).checked()

    def configs(self) -> list[tuple[str, Any]]:
        """``[(point name, GenerationConfig), ...]`` in the order of :attr:`points`."""
        from cgjax.reference._generate import GenerationConfig

        out = []
        for k, (T, rho) in enumerate(self.points):
            c = GenerationConfig(
                system=self.system, n_molecules=self.n_molecules, temperature=T, density=rho,
                equilibration=self.equilibration, nh_equilibration=self.nh_equilibration,
                production=self.production,
                save_every=self.save_every, dt=self.dt, seed=self.seed + k,
                platform=self.platform, threads=self.threads, cutoff=self.cutoff,
                dtype=self.dtype, velocities=self.velocities,
            )  # fmt: skip
            out.append((point_name(self.system, T, rho), c))
        return out

    def checked(self) -> GridSpec:
        """This spec, or a named error for the first bad state point (nothing is run).

        Raises:
          UnknownMoleculeError: ``system`` is not a known molecule.
          BoxTooSmallError: a point's cube is not wider than twice the cutoff.
          PackingError: a point's density exceeds :data:`MAX_PACKING_FRACTION`.
          ValueError: no points, non-positive or duplicate state points.
        """
        if self.system not in SYSTEMS:
            raise UnknownMoleculeError(
                f"unknown molecule {self.system!r}; known: {', '.join(sorted(SYSTEMS))}"
            )
        if not self.points:
            raise ValueError("the grid has no state points")
        if len(set(self.points)) != len(self.points):
            raise ValueError(f"duplicate state points in {self.points}")
        spec = SYSTEMS[self.system]
        for name, c in self.configs():
            c = c.resolved()
            L = box_length(c.n_molecules, spec.molecule.mass, c.density)
            if not L > 2 * c.cutoff:
                raise BoxTooSmallError(
                    f"{name}: box {L:.4g} nm is not larger than twice the cutoff "
                    f"({c.cutoff:.4g} nm); use more molecules or a shorter cutoff"
                )
            eta = packing_fraction(self.system, c.density)
            if eta > MAX_PACKING_FRACTION:
                raise PackingError(
                    f"{name}: {c.density} g/cm^3 cannot be packed: the molecules' LJ cores "
                    f"would fill {eta:.2f} of the box (limit {MAX_PACKING_FRACTION})"
                )
        return self


def _read_manifest(out_dir: str) -> dict:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return {"points": {}}
    with open(path) as f:
        return json.load(f)


def generate_grid(
    spec: GridSpec, out_dir: str | os.PathLike, *, progress: bool = True, command: str | None = None
) -> dict:
    """Runs every state point of ``spec`` not yet done in ``out_dir``; returns the manifest.

    A point is done when its ``.npz`` exists and the manifest records it with
    the same generation config; such points are skipped (a killed grid
    resumes). A point recorded with a different config is an error rather than
    silently mixed data.

    Args:
      spec: the :class:`GridSpec` (checked first: nothing runs on a bad grid).
      out_dir: output directory (created); one ``NAME.npz`` per point and ``manifest.json``.
      progress: tqdm bars (grid and per run).
      command: the command line, stored in each file's provenance and the manifest.

    Returns:
      The manifest dict: ``spec``, ``command`` and ``points``
      ``{name: {temperature_K, density_g_per_cm3, file, config, box_nm, wall_s, ...}}``.
    """
    from tqdm.auto import tqdm

    from cgjax.config import write_json
    from cgjax.reference._generate import generate_to_file

    spec = spec.checked()
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    manifest = _read_manifest(out_dir)
    manifest.update(spec=dataclasses.asdict(spec), command=command)
    todo = []
    for name, c in spec.configs():
        entry = manifest["points"].get(name)
        here = os.path.exists(os.path.join(out_dir, f"{name}.npz"))
        if entry is not None and here:
            if entry["config"] != json.loads(json.dumps(dataclasses.asdict(c))):
                raise ValueError(
                    f"{out_dir}: {name} was made with another config; remove it or use "
                    "another directory"
                )
            continue
        todo.append((name, c))
    bar = tqdm(total=len(spec.points), initial=len(spec.points) - len(todo),
               desc=f"{spec.system} grid", unit="point", disable=not progress)  # fmt: skip
    with bar:
        for name, c in todo:
            bar.set_postfix_str(name)
            t0 = time.perf_counter()
            file = os.path.join(out_dir, f"{name}.npz")
            cg = generate_to_file(c, file, progress=progress,
                                  provenance={"command": command, "grid_point": name})  # fmt: skip
            manifest["points"][name] = {
                "temperature_K": c.temperature,
                "density_g_per_cm3": c.density,
                "file": f"{name}.npz",
                "config": dataclasses.asdict(c),
                "n_frames": int(cg.positions.shape[0]),
                "n_beads": int(cg.positions.shape[1]),
                "box_nm": float(np.asarray(cg.box)[0, 0]),
                "aa_temperature_mean_K": float(cg.metadata["aa_temperature_mean"]),
                "wall_s": time.perf_counter() - t0,
            }
            write_json(os.path.join(out_dir, MANIFEST), manifest)
            bar.update()
    write_json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def load_grid(out_dir: str | os.PathLike, *, wrapped: bool = False) -> dict:
    """``{(T K, rho g/cm^3): Frames}`` of a finished grid directory, from its manifest."""
    from cgjax.data import Frames

    manifest = _read_manifest(os.fspath(out_dir))
    out = {}
    for entry in manifest["points"].values():
        f = Frames.load(os.path.join(os.fspath(out_dir), entry["file"]))
        key = (float(entry["temperature_K"]), float(entry["density_g_per_cm3"]))
        out[key] = f.wrapped() if wrapped else f
    if not out:
        raise FileNotFoundError(f"no finished state points in {out_dir}")
    return out
