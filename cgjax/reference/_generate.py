"""Reference trajectories: minimise, equilibrate (Langevin, then Nose-Hoover), produce, map, save.

The production thermostat is OpenMM's Nose-Hoover chain, which perturbs the
dynamics far less than Langevin friction, so diffusion coefficients from the
saved trajectory are those of the model. Production starts only after a
Nose-Hoover equilibration, so the chain's own variables have relaxed; PME
uses an Ewald tolerance of 1e-4 (OpenMM's default is 5e-4). Both defaults
come from the SPC/E protocol study in ``cgjax/datasets/README.md``. Frames
are mapped to one bead per molecule (centre of mass) as they are saved, so
memory grows with the CG trajectory only (plus the AA one when it is asked
for).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, NamedTuple

import numpy as np

from cgjax import units
from cgjax.reference._openmm import require_openmm
from cgjax.reference._systems import (
    EWALD_TOLERANCE,
    SYSTEMS,
    atom_species,
    box_length,
    build_system,
    initial_positions,
    molecule_index,
)

__all__ = ["GenerationConfig", "generate", "generate_to_file", "kinetic_temperature"]

# Production stops when the kinetic temperature leaves [T / 3, 3 T]: an
# exploding or frozen run, not a fluctuation (those are ~sqrt(2 / dof) T).
_TEMPERATURE_FACTOR = 3.0


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """Everything that defines a reference run (``None`` takes the system's default).

    Attributes:
      system: a key of :data:`~cgjax.reference.SYSTEMS` (``spce``, ``tip3p``, ``argon``,
        ``methane``).
      n_molecules: molecules in the cube.
      temperature: K.
      density: g/cm^3 (sets the cube edge).
      equilibration: Langevin equilibration after minimisation (ps).
      nh_equilibration: Nose-Hoover equilibration after the Langevin one, with
        the production integrator and not saved (ps).
      production: Nose-Hoover production (ps); frames are saved every ``save_every``.
      save_every: time between saved frames (ps); a whole number of steps.
      dt: time step (fs).
      seed: seeds orientations, initial velocities and the Langevin noise.
      platform: OpenMM platform (``CPU``, ``Reference``, ``CUDA``, ``OpenCL``).
      threads: CPU threads (default: OpenMM's choice).
      cutoff: real-space cutoff (nm).
      friction: Langevin friction during equilibration (1/ps).
      collision_frequency: Nose-Hoover chain coupling (1/ps).
      ewald_tolerance: PME's relative force error tolerance (dimensionless;
        OpenMM's default is 5e-4, ours 1e-4). Unused for systems without PME.
      dtype: dtype of the saved arrays (``float32`` or ``float64``).
      velocities: also save (COM) velocities.
    """

    system: str
    n_molecules: int | None = None
    temperature: float | None = None
    density: float | None = None
    equilibration: float = 20.0
    nh_equilibration: float = 20.0
    production: float = 100.0
    save_every: float = 0.2
    dt: float | None = None
    seed: int = 0
    platform: str = "CPU"
    threads: int | None = None
    cutoff: float | None = None
    friction: float = 1.0
    collision_frequency: float = 1.0
    ewald_tolerance: float = EWALD_TOLERANCE
    dtype: str = "float32"
    velocities: bool = True

    def resolved(self) -> GenerationConfig:
        """This config with every ``None`` default filled in from the system, checked."""
        if self.system not in SYSTEMS:
            from cgjax.reference._grid import UnknownMoleculeError

            raise UnknownMoleculeError(
                f"unknown reference system {self.system!r}; known: {', '.join(sorted(SYSTEMS))}"
            )
        spec = SYSTEMS[self.system]
        c = dataclasses.replace(
            self,
            n_molecules=spec.n_molecules if self.n_molecules is None else int(self.n_molecules),
            temperature=spec.temperature if self.temperature is None else float(self.temperature),
            density=spec.density if self.density is None else float(self.density),
            dt=spec.dt_fs if self.dt is None else float(self.dt),
            cutoff=spec.cutoff if self.cutoff is None else float(self.cutoff),
        )
        for name in ("n_molecules", "temperature", "density", "dt", "cutoff", "save_every"):
            if not getattr(c, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(c, name)}")
        for name in ("equilibration", "nh_equilibration", "friction", "collision_frequency"):
            if not getattr(c, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(c, name)}")
        if not 0 < c.ewald_tolerance < 0.1:
            raise ValueError(f"ewald_tolerance must be in (0, 0.1), got {c.ewald_tolerance}")
        if c.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {c.dtype!r}")
        c._steps(c.save_every, "save_every")
        frames = c.production / c.save_every
        if not (c.production > 0 and round(frames) >= 1 and abs(frames - round(frames)) < 1e-6):
            raise ValueError(
                f"production ({c.production} ps) must be a positive whole number of "
                f"save_every intervals ({c.save_every} ps)"
            )
        return c

    def _steps(self, t_ps: float, name: str) -> int:
        steps = t_ps / (self.dt * units.fs)
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            raise ValueError(
                f"{name} = {t_ps} ps is not a whole number of {self.dt} fs steps ({steps:.6g})"
            )
        return round(steps)


def kinetic_temperature(velocities: np.ndarray, masses: np.ndarray, dof: int) -> float:
    """``2 KE / (dof kB)`` (K) of velocities ``[N, 3]`` (nm/ps) and masses ``[N]`` (amu)."""
    ke = 0.5 * float(np.sum(masses[:, None] * velocities.astype(np.float64) ** 2))
    return 2.0 * ke / (dof * units.kB)


class _Failure(RuntimeError):
    pass


def _context(openmm, system, integrator, config):
    platform = openmm.Platform.getPlatformByName(config.platform)
    props = {}
    if config.threads and config.platform == "CPU":
        props["Threads"] = str(config.threads)
    return openmm.Context(system, integrator, platform, props)


def _snapshot(context, *, forces: bool):
    from openmm import unit

    state = context.getState(
        getPositions=True, getVelocities=True, getForces=forces, getEnergy=True
    )  # enforcePeriodicBox defaults to False: continuous trajectories, whole molecules
    R = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    V = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    F = None
    if forces:
        F = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    U = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    return np.asarray(R), np.asarray(V), None if F is None else np.asarray(F), float(U)


def _check(R, V, F, T, target, where):
    arrays = [R, V] + ([] if F is None else [F])
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise _Failure(f"non-finite positions, velocities or forces during {where}")
    if not target / _TEMPERATURE_FACTOR < T < target * _TEMPERATURE_FACTOR:
        raise _Failure(
            f"kinetic temperature {T:.1f} K during {where} is far from the {target} K target "
            "(the run is exploding or frozen; try a smaller --dt)"
        )


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False)


class _Setup(NamedTuple):
    """The built system of a resolved config (lengths nm, masses amu)."""

    c: GenerationConfig
    spec: Any
    system: Any  # openmm.System
    L: float  # cube edge (nm)
    masses: np.ndarray  # [n_atoms] amu
    dof: int  # kinetic degrees of freedom
    n_save: int  # steps between saved frames


def _setup(config: GenerationConfig) -> tuple[_Setup, np.ndarray]:
    """The resolved config's system and its lattice start ``[n_atoms, 3]`` (nm)."""
    c = config.resolved()
    spec = SYSTEMS[c.system]
    rng = np.random.default_rng(c.seed)
    L = box_length(c.n_molecules, spec.molecule.mass, c.density)
    system = build_system(
        spec, c.n_molecules, L, cutoff=c.cutoff, ewald_tolerance=c.ewald_tolerance
    )
    R0 = initial_positions(spec, c.n_molecules, L, rng)
    masses = np.asarray([system.getParticleMass(i)._value for i in range(system.getNumParticles())])
    # Virtual sites (mass 0) carry no degrees of freedom of their own.
    dof = 3 * int(np.count_nonzero(masses)) - system.getNumConstraints() - 3
    n_save = c._steps(c.save_every, "save_every")
    return _Setup(c, spec, system, L, masses, dof, n_save), R0


def _equilibrate(openmm, s: _Setup, R0: np.ndarray, timings: dict, progress: bool) -> Any:
    """Minimisation and Langevin equilibration; the final OpenMM state."""
    c, T = s.c, s.c.temperature
    t_start = time.perf_counter()
    langevin = openmm.LangevinMiddleIntegrator(T, c.friction, c.dt * units.fs)
    langevin.setRandomNumberSeed(c.seed + 1)  # 0 would mean "pick one at random"
    ctx = _context(openmm, s.system, langevin, c)
    ctx.setPositions(R0)
    # Lattice starts overlap little; 10 kJ/mol/nm is OpenMM's default tolerance.
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 0)
    ctx.setVelocitiesToTemperature(T, c.seed + 1)
    timings["setup_s"] = time.perf_counter() - t_start
    n_equil = c._steps(c.equilibration, "equilibration") if c.equilibration else 0
    t0 = time.perf_counter()
    with _progress(math.ceil(n_equil / s.n_save), f"{c.system} equilibrate", progress) as bar:
        done = 0
        while done < n_equil:
            k = min(s.n_save, n_equil - done)
            langevin.step(k)
            done += k
            R, V, _, _ = _snapshot(ctx, forces=False)
            T_now = kinetic_temperature(V, s.masses, s.dof)
            _check(R, V, None, T_now, T, "equilibration")
            bar.set_postfix(T=f"{T_now:.1f}")
            bar.update()
    timings["equilibration_s"] = time.perf_counter() - t0
    return ctx.getState(getPositions=True, getVelocities=True)


def _nh_equilibrate(s: _Setup, integrator: Any, ctx: Any, timings: dict, progress: bool) -> None:
    """``nh_equilibration`` ps of the production integrator, nothing saved."""
    c = s.c
    n_steps = c._steps(c.nh_equilibration, "nh_equilibration") if c.nh_equilibration else 0
    t0 = time.perf_counter()
    with _progress(math.ceil(n_steps / s.n_save), f"{c.system} NH equilibrate", progress) as bar:
        done = 0
        while done < n_steps:
            k = min(s.n_save, n_steps - done)
            integrator.step(k)
            done += k
            R, V, _, _ = _snapshot(ctx, forces=False)
            T_now = kinetic_temperature(V, s.masses, s.dof)
            _check(R, V, None, T_now, c.temperature, "Nose-Hoover equilibration")
            bar.set_postfix(T=f"{T_now:.1f}")
            bar.update()
    timings["nh_equilibration_s"] = time.perf_counter() - t0


def _produce(openmm, s: _Setup, state: Any, keep_aa: bool, timings: dict, progress: bool):
    """Nose-Hoover equilibration and production from ``state``, mapped to centres of mass.

    Returns ``(context, cg, aa, temperatures (K), energies (kJ/mol))``; ``cg``
    and ``aa`` are dicts of per-frame lists (``aa`` empty unless ``keep_aa``).
    """
    from cgjax import data

    c, T = s.c, s.c.temperature
    nose_hoover = openmm.NoseHooverIntegrator(T, c.collision_frequency, c.dt * units.fs)
    ctx = _context(openmm, s.system, nose_hoover, c)
    ctx.setPositions(state.getPositions())
    ctx.setVelocities(state.getVelocities())
    _nh_equilibrate(s, nose_hoover, ctx, timings, progress)
    species, _ = atom_species(s.spec, c.n_molecules)
    # Virtual sites (mass 0) are left out of the map: OpenMM has already moved
    # their forces onto the massive atoms that define them, and they add no mass.
    massive = s.masses > 0
    cg_map = data.center_of_mass_map(molecule_index(s.spec, c.n_molecules)[massive],
                                     s.masses[massive])  # fmt: skip
    n_frames = round(c.production / c.save_every)
    out_dtype = np.dtype(c.dtype)
    cg = {"positions": [], "forces": [], "velocities": []}
    aa = {"positions": [], "forces": [], "velocities": []}
    temps, energies = [], []
    t0 = time.perf_counter()
    with _progress(n_frames, f"{c.system} production", progress) as bar:
        for _ in range(n_frames):
            nose_hoover.step(s.n_save)
            R, V, F, U = _snapshot(ctx, forces=True)
            T_now = kinetic_temperature(V, s.masses, s.dof)
            _check(R, V, F, T_now, T, "production")
            aa_frame = data.Frames(
                R[None, massive], species[massive], s.masses[massive], forces=F[None, massive],
                velocities=V[None, massive], box=np.eye(3) * s.L,
            )  # fmt: skip
            mapped = cg_map.apply(aa_frame)
            # Constraint forces are internal to each molecule and cancel in the
            # per-molecule sum, so summed AA forces (which OpenMM reports without
            # them) are the exact CG forces even for rigid water.
            cg["positions"].append(np.asarray(mapped.positions[0], out_dtype))
            cg["forces"].append(np.asarray(mapped.forces[0], out_dtype))
            if c.velocities:
                cg["velocities"].append(np.asarray(mapped.velocities[0], out_dtype))
            if keep_aa:  # massive atoms only (virtual sites are functions of them)
                aa["positions"].append(R[massive].astype(out_dtype))
                aa["forces"].append(F[massive].astype(out_dtype))
                if c.velocities:
                    aa["velocities"].append(V[massive].astype(out_dtype))
            temps.append(T_now)
            energies.append(U)
            bar.set_postfix(T=f"{T_now:.1f}")
            bar.update()
    timings["production_s"] = time.perf_counter() - t0
    steps = n_frames * s.n_save
    timings["production_steps_per_s"] = steps / max(timings["production_s"], 1e-9)
    return ctx, cg, aa, np.asarray(temps), np.asarray(energies)


def _provenance(openmm, s: _Setup, ctx: Any, timings: dict, extra: dict | None) -> dict:
    from cgjax import data

    c, T = s.c, s.c.temperature
    return data.provenance(
        "cgjax.reference",
        config=dataclasses.asdict(c),
        system=s.spec.describe(),
        box_nm=s.L,
        n_atoms=s.system.getNumParticles(),
        n_constraints=s.system.getNumConstraints(),
        kinetic_dof=s.dof,
        openmm_version=openmm.__version__,
        openmm_platform=ctx.getPlatform().getName(),
        platform_threads=_threads(ctx),
        timings=timings,
        integrators={
            "equilibration": f"LangevinMiddleIntegrator(T={T} K, friction={c.friction}/ps, "
            f"dt={c.dt} fs)",
            "nh_equilibration": f"{c.nh_equilibration} ps of the production integrator, not saved",
            "production": f"NoseHooverIntegrator(T={T} K, collision_frequency="
            f"{c.collision_frequency}/ps, chain_length=3, dt={c.dt} fs)",
        },
        ewald_tolerance=c.ewald_tolerance if s.spec.pme else None,
        **(extra or {}),
    )


def generate(
    config: GenerationConfig,
    *,
    keep_aa: bool = False,
    progress: bool = True,
    provenance: dict | None = None,
):
    """Runs a reference simulation and returns its CG (and optionally AA) frames.

    Protocol: molecules on a lattice with random orientations, energy
    minimisation, ``equilibration`` ps of ``LangevinMiddleIntegrator``,
    ``nh_equilibration`` ps of ``NoseHooverIntegrator`` (not saved: the
    chain's thermostat variables start at rest and need to relax), then
    ``production`` ps of the same integrator saving AA positions
    (unwrapped: OpenMM keeps them continuous), velocities and forces every
    ``save_every`` ps, each frame mapped to molecular centres of mass.

    The kinetic temperature of every saved frame is computed from the AA
    velocities with ``dof = 3 n_atoms - n_constraints - 3`` (constraints and
    the removed centre-of-mass motion), e.g. ``6 n_waters - 3`` for rigid
    water, and stored as ``metadata["aa_temperature"]`` (K, per frame).

    Args:
      config: the :class:`GenerationConfig`.
      keep_aa: also return the AA frames (massive atoms only: virtual sites are left out).
      progress: show tqdm bars.
      provenance: extra provenance entries (e.g. the command line).

    Returns:
      ``(cg, aa)``: :class:`cgjax.data.Frames` (positions nm, forces
      kJ/mol/nm, velocities nm/ps); ``aa`` is ``None`` unless ``keep_aa``.

    Raises:
      RuntimeError: on non-finite values or a runaway temperature; nothing is returned.
    """
    openmm = require_openmm()

    from cgjax import data

    s, R0 = _setup(config)
    c = s.c
    timings: dict = {}
    state = _equilibrate(openmm, s, R0, timings, progress)
    ctx, cg, aa, temps, energies = _produce(openmm, s, state, keep_aa, timings, progress)
    prov = _provenance(openmm, s, ctx, timings, provenance)
    species, elements = atom_species(s.spec, c.n_molecules)
    out_dtype = np.dtype(c.dtype)
    meta = {
        "system": c.system,
        "aa_temperature": temps,  # K, per frame, from AA velocities with constraints
        "aa_temperature_mean": float(np.mean(temps)),
        "aa_potential_energy": energies,  # kJ/mol, per frame, whole system
        "kinetic_dof": s.dof,
        "elements": elements,
    }

    def frames(d, species_, masses_, **kw):
        return data.Frames(
            np.stack(d["positions"]),
            species_,
            masses_,
            forces=np.stack(d["forces"]),
            velocities=np.stack(d["velocities"]) if c.velocities else None,
            box=(np.eye(3) * s.L).astype(out_dtype),
            temperature=c.temperature,
            dt=c.save_every,
            provenance=prov,
            metadata={**meta, **kw},
        )

    cg_frames = frames(
        cg,
        np.zeros(c.n_molecules, np.int32),
        np.full(c.n_molecules, s.spec.molecule.mass, out_dtype),
        mapping="center_of_mass",
    )
    massive = s.masses > 0
    aa_frames = (
        frames(aa, species[massive], s.masses[massive].astype(out_dtype), mapping=None)
        if keep_aa
        else None
    )
    return cg_frames, aa_frames


def _threads(ctx) -> Any:
    try:
        return ctx.getPlatform().getPropertyValue(ctx, "Threads")
    except Exception:  # not a CPU platform
        return None


def generate_to_file(
    config: GenerationConfig,
    out: str | os.PathLike,
    *,
    aa_out: str | os.PathLike | None = None,
    progress: bool = True,
    provenance: dict | None = None,
):
    """Runs :func:`generate` and saves the CG frames to ``out`` (and AA to ``aa_out``).

    Files are written only after the whole run has succeeded, each atomically
    (:meth:`cgjax.data.Frames.save`), so a failed run leaves no output. If
    saving the CG file fails after the AA file was written, the AA file is
    removed again.

    Returns:
      The CG :class:`cgjax.data.Frames`.
    """
    cg, aa = generate(config, keep_aa=aa_out is not None, progress=progress, provenance=provenance)
    if aa_out is not None:
        aa.save(aa_out)
    try:
        cg.save(out)
    except BaseException:
        if aa_out is not None and os.path.exists(aa_out):
            os.remove(aa_out)
        raise
    return cg
