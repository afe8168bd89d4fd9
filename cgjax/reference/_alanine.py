"""Capped alanine (ACE-ALA-NME) in OBC2 implicit solvent, mapped to paper 001's 6 beads.

Many copies of the molecule share one OpenMM ``System`` so one context steps
them all. They must not interact: the nonbonded and GB terms use
``CutoffNonPeriodic`` with a cutoff longer than any intramolecular distance,
and each copy's centroid is held near its own lattice site by a flat-bottom
restraint (zero inside ``restraint_radius``), so copies stay further apart than
the cutoff. With OpenMM's implicit-solvent setup (reaction-field dielectric 1)
a cutoff beyond every intramolecular pair changes energies by a constant only;
the forces equal those of ``NoCutoff`` (checked in the tests). The restraint
acts on each copy's centroid alone, so it leaves the internal (and so the CG)
configurational distribution unchanged; it sits in its own force group, left
out of the saved forces. Every saved frame checks that copies are apart and
that no copy is larger than the cutoff, and stops otherwise.

Bonds to hydrogen may be constrained (with hydrogen-mass repartitioning for a
4 fs step). OpenMM leaves constraint forces out of the forces it reports, so
each hydrogen's force is added to its heavy atom's
(:func:`cgjax.data.constrained_slice_map`): the constraint forces cancel and
the mapped forces are the CG mean-force estimate.

With ``metad > 0`` the copies first run well-tempered metadynamics on their
backbone phi (one bias shared by all copies, a Fourier series in phi), which is
then frozen for the equilibration and production: the copies cross the phi = 0
barrier, and every frame is a Boltzmann sample of the biased Hamiltonian, to be
reweighted by ``exp(V(phi) / kT)`` (:func:`cgjax.observables.frame_weights`).
The bias sits in its own force group, left out of the saved forces.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. IV A.
  J. A. Maier et al., J. Chem. Theory Comput. 11, 3696 (2015) (ff14SB).
  A. Onufriev, D. Bashford, D. A. Case, Proteins 55, 383 (2004) (OBC2).
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from cgjax import units

__all__ = [
    "ALANINE_BEADS",
    "AlanineConfig",
    "alanine_system",
    "generate_alanine",
]

# Paper 001's beads, in its order: (residue, atom name, element).
ALANINE_BEADS = (
    ("ACE", "C", "C"),
    ("ALA", "N", "N"),
    ("ALA", "CA", "C"),
    ("ALA", "C", "C"),
    ("NME", "N", "N"),
    ("ALA", "CB", "C"),
)
BEAD_NAMES = ("C_ACE", "N", "CA", "C", "N_NME", "CB")
ATOMIC_NUMBERS = {"C": 6, "N": 7}
_RESTRAINT_GROUP = 1
_BIAS_GROUP = 2  # the phi bias of --metad: left out of the saved forces
PHI_BEADS = (0, 1, 2, 3)  # C(ACE), N, CA, C: phi, in bead indices


@dataclasses.dataclass(frozen=True)
class AlanineConfig:
    """A capped-alanine reference run.

    Attributes:
      copies: independent molecules simulated together.
      spacing: lattice spacing of the copies' sites (nm).
      cutoff: nonbonded and GB cutoff (nm); longer than the molecule.
      restraint_radius: flat-bottom radius of each copy's centroid restraint (nm).
      temperature: K.
      equilibration: Langevin run after minimisation, not saved (ps).
      production: saved run per copy (ps).
      save_every: ps between saved frames.
      dt: time step (fs).
      hydrogen_mass: amu per hydrogen after repartitioning (``None``: no HMR).
      constraints: ``"hbonds"`` or ``"none"``.
      friction: Langevin friction (1/ps).
      seed: velocities and Langevin noise.
      platform, threads: OpenMM platform and CPU threads.
      checkpoint_every: ps of production between checkpoints (resume with the same command).
      start_phi_psi: ``(phi, psi)`` pairs (degrees) the copies start from, copy ``k``
        from pair ``k mod len`` (:func:`set_phi_psi`, then the minimisation); ``()``:
        every copy from the shipped structure (then all copies start in one basin).
      metad: ps of well-tempered metadynamics on every copy's phi after the
        minimisation (0: no bias). The copies are walkers of one shared bias, a
        Fourier series in phi (:class:`~cgjax.observables.TorsionBias`); it is then frozen for the
        equilibration and production, so frames are Boltzmann samples of the
        biased Hamiltonian, reweighted by ``exp(V(phi) / kT)``. phi is a
        function of bead positions (C(ACE), N, CA, C are beads), so the bias
        leaves the distribution of atoms given the beads, and with it the mean
        force, unchanged; its force is left out of the saved forces.
      metad_height: Gaussian height per walker and deposit before tempering (kJ/mol).
      metad_width: Gaussian standard deviation in phi (degrees).
      metad_bias_factor: well-tempered bias factor gamma; the frozen bias is about
        ``-(1 - 1/gamma)`` times the free energy in phi.
      metad_stride: ps between deposits.
      bias_order: Fourier harmonics of the bias.
    """

    copies: int = 64
    spacing: float = 5.0
    cutoff: float = 2.0
    restraint_radius: float = 0.5
    temperature: float = 300.0
    equilibration: float = 50.0
    production: float = 1600.0
    save_every: float = 1.0
    dt: float = 4.0
    hydrogen_mass: float | None = 4.0
    constraints: str = "hbonds"
    friction: float = 1.0
    seed: int = 0
    platform: str = "CPU"
    threads: int | None = None
    checkpoint_every: float = 50.0
    start_phi_psi: tuple[tuple[float, float], ...] = ()
    metad: float = 0.0
    metad_height: float = 0.05
    metad_width: float = 20.0
    metad_bias_factor: float = 6.0
    metad_stride: float = 0.5
    bias_order: int = 10

    def steps(self, t_ps: float, name: str) -> int:
        """Whole number of ``dt`` steps in ``t_ps`` ps, or ``ValueError``."""
        n = t_ps / (self.dt * units.fs)
        if abs(n - round(n)) > 1e-6 * max(1.0, n) or n < 0:
            raise ValueError(f"{name} = {t_ps} ps is not a whole number of {self.dt} fs steps")
        return round(n)

    def check(self) -> None:
        """Raises ``ValueError`` on an inconsistent config."""
        if self.constraints not in ("hbonds", "none"):
            raise ValueError(f"constraints must be 'hbonds' or 'none', got {self.constraints!r}")
        for name in ("copies", "spacing", "cutoff", "temperature", "dt", "save_every"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.spacing - 2 * self.restraint_radius - 1.6 < self.cutoff:
            raise ValueError(
                f"spacing {self.spacing} nm leaves copies within the {self.cutoff} nm cutoff "
                f"(needs >= cutoff + 2 restraint_radius + 1.6 nm of molecule)"
            )
        every = self.steps(self.save_every, "save_every")
        if self.steps(self.production, "production") % every:
            raise ValueError("production must be a whole number of save_every intervals")
        self.steps(self.equilibration, "equilibration")
        if self.metad < 0:
            raise ValueError(f"metad must be >= 0 ps, got {self.metad}")
        if self.metad > 0:
            stride = self.steps(self.metad_stride, "metad_stride")
            if stride == 0 or self.steps(self.metad, "metad") % stride:
                raise ValueError("metad must be a positive whole number of metad_stride intervals")
            for name in ("metad_height", "metad_width", "bias_order"):
                if not getattr(self, name) > 0:
                    raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
            if not self.metad_bias_factor > 1:
                raise ValueError(f"metad_bias_factor must be > 1, got {self.metad_bias_factor}")
        for pair in self.start_phi_psi:
            if len(pair) != 2 or not all(-180.0 <= float(x) <= 180.0 for x in pair):
                raise ValueError(
                    f"start_phi_psi entries must be (phi, psi) in [-180, 180] degrees, got {pair!r}"
                )


def pdb_path() -> str:
    """Path of the shipped ACE-ALA-NME structure (``cgjax/reference/data``)."""
    return str(resources.files("cgjax.reference") / "data" / "alanine-dipeptide.pdb")


class AlanineSystem(NamedTuple):
    """A built multi-copy system (lengths nm, masses amu)."""

    system: Any  # openmm.System
    positions: np.ndarray  # [copies * 22, 3] nm
    masses: np.ndarray  # [copies * 22] amu, as simulated (after HMR)
    bead_atoms: np.ndarray  # [6] atom indices of the beads in one copy
    bead_masses: np.ndarray  # [6] amu, heavy atom + its hydrogens (standard masses)
    constraints: np.ndarray  # [n_constraints, 2] of one copy
    sites: np.ndarray  # [copies, 3] restraint centres, nm
    n_atoms: int  # atoms per copy


def _one_copy(app, config: AlanineConfig):
    pdb = app.PDBFile(pdb_path())
    ff = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    return pdb, ff


def _bead_atoms(topology) -> tuple[np.ndarray, np.ndarray]:
    """Bead atom indices ``[6]`` and, per bead, heavy + bonded H standard masses (amu)."""
    atoms = list(topology.atoms())
    index = {(a.residue.name, a.name): a.index for a in atoms}
    beads = np.asarray([index[(res, name)] for res, name, _ in ALANINE_BEADS])
    masses = np.zeros(len(beads))
    for k, i in enumerate(beads):
        masses[k] = atoms[i].element.mass._value
    for a, b in topology.bonds():
        for x, y in ((a, b), (b, a)):
            if x.index in beads and y.element.symbol == "H":
                masses[list(beads).index(x.index)] += y.element.mass._value
    return beads, masses


def _side(bonds: dict[int, set[int]], root: int, cut: int) -> list[int]:
    """Atoms reached from ``root`` without crossing the bond ``root``-``cut``."""
    seen, todo = {root}, [root]
    while todo:
        i = todo.pop()
        for j in bonds[i]:
            if j not in seen and (i, j) != (root, cut):
                seen.add(j)
                todo.append(j)
    if cut in seen:
        raise ValueError(f"atoms {root} and {cut} are in a ring: no side to rotate")
    return sorted(seen)


def set_phi_psi(positions: np.ndarray, topology: Any, phi: float, psi: float) -> np.ndarray:
    """One copy's positions (nm, ``[22, 3]``) with its backbone phi and psi set (degrees).

    phi (C(ACE)-N-CA-C) is set by rotating every atom on CA's side of the N-CA
    bond about it, psi (N-CA-C-N(NME)) by rotating C's side of the CA-C bond;
    bond lengths and angles are kept. Clashes are left to the minimiser.
    """
    index = {(a.residue.name, a.name): a.index for a in topology.atoms()}
    bonds: dict[int, set[int]] = {a.index: set() for a in topology.atoms()}
    for a, b in topology.bonds():
        bonds[a.index].add(b.index)
        bonds[b.index].add(a.index)
    c0, n, ca, c, n1 = (index[k] for k in (("ACE", "C"), ("ALA", "N"), ("ALA", "CA"),
                                           ("ALA", "C"), ("NME", "N")))  # fmt: skip
    R = np.array(positions, dtype=float)
    for quad, target in (((c0, n, ca, c), phi), ((n, ca, c, n1), psi)):
        _, b1, b2, _ = quad
        now = float(np.rad2deg(_dihedral(R[list(quad)])))
        moving = _side(bonds, b2, b1)
        axis = (R[b2] - R[b1]) / np.linalg.norm(R[b2] - R[b1])
        t = np.deg2rad(target - now)
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K  # Rodrigues
        R[moving] = (R[moving] - R[b2]) @ rot.T + R[b2]
    return R


def _dihedral(p: np.ndarray) -> float:
    """Dihedral (rad) of four points ``[4, 3]``, IUPAC sign."""
    b0, b1, b2 = p[0] - p[1], p[2] - p[1], p[3] - p[2]
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - (b0 @ b1) * b1, b2 - (b2 @ b1) * b1
    return float(np.arctan2(np.cross(b1, v) @ w, v @ w))


def alanine_system(config: AlanineConfig) -> AlanineSystem:
    """The OpenMM system of ``config.copies`` non-interacting copies on a cubic lattice."""
    import openmm
    from openmm import app, unit

    config.check()
    pdb, ff = _one_copy(app, config)
    R0 = np.asarray(pdb.positions.value_in_unit(unit.nanometer))
    R0 = R0 - R0.mean(axis=0)
    side = int(np.ceil(config.copies ** (1 / 3) - 1e-9))
    modeller = app.Modeller(app.Topology(), [])
    sites = []
    for k in range(config.copies):
        site = config.spacing * np.asarray([k % side, (k // side) % side, k // side**2], float)
        sites.append(site)
        Rk = R0
        if config.start_phi_psi:
            phi, psi = config.start_phi_psi[k % len(config.start_phi_psi)]
            Rk = set_phi_psi(R0, pdb.topology, float(phi), float(psi))
            Rk = Rk - Rk.mean(axis=0)
        modeller.add(pdb.topology, (Rk + site) * unit.nanometer)
    system = ff.createSystem(
        modeller.topology,
        nonbondedMethod=app.CutoffNonPeriodic,
        nonbondedCutoff=config.cutoff * unit.nanometer,
        constraints=app.HBonds if config.constraints == "hbonds" else None,
        hydrogenMass=None if config.hydrogen_mass is None else config.hydrogen_mass * unit.amu,
        removeCMMotion=False,
    )
    n = pdb.topology.getNumAtoms()
    restraint = openmm.CustomCentroidBondForce(
        1, "0.5*k*step(d-r0)*(d-r0)^2; d=sqrt((x1-x0)^2+(y1-y0)^2+(z1-z0)^2)"
    )
    restraint.addGlobalParameter("k", 1000.0)  # kJ/mol/nm^2
    restraint.addGlobalParameter("r0", config.restraint_radius)
    for name in ("x0", "y0", "z0"):
        restraint.addPerBondParameter(name)
    for k, site in enumerate(sites):
        atoms = list(range(k * n, (k + 1) * n))
        restraint.addGroup(atoms, [1.0] * n)  # centroid: independent of (HMR) masses
        restraint.addBond([k], list(site))
    restraint.setForceGroup(_RESTRAINT_GROUP)
    system.addForce(restraint)
    beads, bead_masses = _bead_atoms(pdb.topology)
    if config.metad > 0:
        zero = _zero_bias(config)
        bias = openmm.CustomTorsionForce(zero.openmm_expression())
        for name, value in zero.openmm_parameters().items():
            bias.addGlobalParameter(name, value)
        for k in range(config.copies):
            bias.addTorsion(*(int(beads[b]) + k * n for b in PHI_BEADS))
        bias.setForceGroup(_BIAS_GROUP)
        system.addForce(bias)
    pairs = [system.getConstraintParameters(i)[:2] for i in range(system.getNumConstraints())]
    one = np.asarray([p for p in pairs if p[0] < n and p[1] < n], np.int64).reshape(-1, 2)
    masses = np.asarray([system.getParticleMass(i)._value for i in range(system.getNumParticles())])
    return AlanineSystem(
        system,
        np.asarray(modeller.positions.value_in_unit(unit.nanometer)),
        masses,
        beads,
        bead_masses,
        one,
        np.asarray(sites),
        n,
    )


def check_copies_apart(R: np.ndarray, n_atoms: int, cutoff: float) -> None:
    """Raises ``RuntimeError`` if a copy spans more than ``cutoff`` or two copies come within it.

    Args:
      R: ``[copies * n_atoms, 3]`` positions (nm).
      n_atoms: atoms per copy.
      cutoff: nonbonded cutoff (nm).
    """
    X = R.reshape(-1, n_atoms, 3)
    centre = X.mean(axis=1)
    radius = np.linalg.norm(X - centre[:, None], axis=-1).max(axis=1)
    if 2 * radius.max() >= cutoff:
        raise RuntimeError(
            f"a copy spans {2 * radius.max():.2f} nm >= the {cutoff} nm cutoff: intramolecular "
            "pairs would be cut; use a longer cutoff"
        )
    d = np.linalg.norm(centre[:, None] - centre[None], axis=-1)
    gap = d - radius[:, None] - radius[None] - cutoff
    np.fill_diagonal(gap, np.inf)
    if gap.min() <= 0:
        i, j = np.unravel_index(np.argmin(gap), gap.shape)
        raise RuntimeError(f"copies {i} and {j} came within the cutoff; use a larger spacing")


def _context(openmm, s: AlanineSystem, config: AlanineConfig):
    integrator = openmm.LangevinMiddleIntegrator(
        config.temperature, config.friction, config.dt * units.fs
    )
    integrator.setRandomNumberSeed(config.seed + 1)  # 0 would mean "pick one at random"
    platform = openmm.Platform.getPlatformByName(config.platform)
    props = {"Threads": str(config.threads)} if config.threads and config.platform == "CPU" else {}
    return openmm.Context(s.system, integrator, platform, props), integrator


def _state(context, every_group_but_restraint: set):
    from openmm import unit

    st = context.getState(
        getPositions=True, getVelocities=True, getForces=True, groups=every_group_but_restraint
    )
    R = st.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    V = st.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    F = st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return np.asarray(R), np.asarray(V), np.asarray(F)


class _Run(NamedTuple):
    """Production so far: mapped arrays ``[frames, copies, 6, 3]``, per-frame T (K) and
    the frozen phi bias (:class:`~cgjax.observables.TorsionBias`, or None)."""

    positions: list
    forces: list
    temperatures: list
    bias: Any = None


def _checkpoint_path(out: str | os.PathLike) -> str:
    return os.fspath(out) + ".partial.npz"


def _save_checkpoint(path: str, context, run: _Run, config: AlanineConfig) -> None:
    import json

    import openmm

    xml = openmm.XmlSerializer.serialize(
        context.getState(getPositions=True, getVelocities=True, getParameters=True)
    )
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        positions=np.asarray(run.positions, np.float32).reshape(-1, config.copies, 6, 3),
        forces=np.asarray(run.forces, np.float32).reshape(-1, config.copies, 6, 3),
        temperatures=np.asarray(run.temperatures),
        state=np.asarray(xml),
        config=np.asarray(json.dumps(dataclasses.asdict(config))),
        bias=np.asarray(json.dumps(None if run.bias is None else run.bias.to_json())),
    )
    os.replace(tmp, path)


def _resume(path: str, context, config: AlanineConfig) -> _Run | None:
    """Restores a checkpoint written by the same config, or returns ``None``."""
    import json

    import openmm

    if not os.path.exists(path):
        return None
    # The run's length may change between resumes (extend or stop early); nothing else.
    free = ("production", "checkpoint_every")
    mine = {k: v for k, v in dataclasses.asdict(config).items() if k not in free}
    with np.load(path) as z:
        saved = {k: v for k, v in json.loads(str(z["config"])).items() if k not in free}
        if saved != json.loads(json.dumps(mine)):
            raise ValueError(f"{path} was written by a different config; remove it to start over")
        if len(z["positions"]) > config.steps(config.production, "production") // config.steps(
            config.save_every, "save_every"
        ):
            raise ValueError(f"{path} holds more frames than production asks for")
        context.setState(openmm.XmlSerializer.deserialize(str(z["state"])))
        bias = json.loads(str(z["bias"])) if "bias" in z.files else None
        if bias is not None:
            from cgjax.observables import TorsionBias

            bias = TorsionBias.from_json(bias)
            _set_bias(context, bias)
        return _Run(list(z["positions"]), list(z["forces"]), list(z["temperatures"]), bias)


def _zero_bias(config: AlanineConfig):
    from cgjax.observables import TorsionBias

    return TorsionBias.zero(PHI_BEADS, config.bias_order)


def _copy_phis(R: np.ndarray, s: AlanineSystem) -> np.ndarray:
    """``[copies]`` phi (rad) of every copy, from atom positions ``[copies * n, 3]`` (nm)."""
    from cgjax.observables import torsions_of

    X = R.reshape(-1, s.n_atoms, 3)[:, s.bead_atoms[list(PHI_BEADS)]]
    return torsions_of(X, [(0, 1, 2, 3)])[:, 0]


def _set_bias(context, bias) -> None:
    for name, value in bias.openmm_parameters().items():
        context.setParameter(name, value)


def check_bias_energy(context, s: AlanineSystem, bias) -> None:
    """Raises ``RuntimeError`` unless OpenMM's bias energy equals ``sum_k V(phi_k)``.

    Ties OpenMM's torsion (``theta``) to the beads' IUPAC phi of
    :func:`cgjax.observables.torsions_of`, with which the weights are computed.
    """
    from openmm import unit

    st = context.getState(getEnergy=True, getPositions=True, groups={_BIAS_GROUP})
    got = st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    R = np.asarray(st.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    want = float(bias.energy(_copy_phis(R, s)).sum())
    if abs(got - want) > 1e-4 * max(1.0, np.abs(bias.cos).sum() + np.abs(bias.sin).sum()) * len(
        s.sites
    ):
        raise RuntimeError(
            f"OpenMM's phi bias energy {got:.6f} kJ/mol differs from sum V(phi) = {want:.6f} "
            "of the beads' phi: the torsion convention or the atoms are wrong"
        )


def _metadynamics(context, integrator, s: AlanineSystem, config: AlanineConfig, bar):
    """Well-tempered metadynamics on phi, all copies depositing into one bias; returns it.

    Heights ``h0 exp(-V(phi) / (kT (gamma - 1)))`` with ``V`` including the
    deposits' constant part (which the stored Fourier series drops).
    """
    from openmm import unit

    bias = _zero_bias(config)
    kT = units.kB * config.temperature
    width = np.deg2rad(config.metad_width)
    stride = config.steps(config.metad_stride, "metad_stride")
    level = 0.0  # the deposits' mean over phi: h w / sqrt(2 pi) each
    for _ in range(config.steps(config.metad, "metad") // stride):
        integrator.step(stride)
        R = context.getState(getPositions=True).getPositions(asNumpy=True)
        phi = _copy_phis(np.asarray(R.value_in_unit(unit.nanometer)), s)
        V = level + bias.energy(phi)
        h = config.metad_height * np.exp(-V / (kT * (config.metad_bias_factor - 1.0)))
        bias = bias.add_gaussians(phi, h, width)
        level += float(h.sum()) * width / np.sqrt(2 * np.pi)
        _set_bias(context, bias)
        bar.update()
    return bias


def _equilibrate(openmm, context, integrator, s: AlanineSystem, config: AlanineConfig, bar):
    """Minimisation, metadynamics (``config.metad > 0``; returns the frozen bias, else
    ``None``) and the equilibration run under the final Hamiltonian."""
    context.setPositions(s.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 0)
    context.setVelocitiesToTemperature(config.temperature, config.seed + 1)
    bias = None
    if config.metad > 0:
        bias = _metadynamics(context, integrator, s, config, bar)
        check_bias_energy(context, s, bias)
    n_save = config.steps(config.save_every, "save_every")
    for _ in range(config.steps(config.equilibration, "equilibration") // n_save):
        integrator.step(n_save)
        bar.update()
    check_copies_apart(_state(context, {0})[0], s.n_atoms, config.cutoff)
    return bias


def _frame(context, s: AlanineSystem, config: AlanineConfig, cg_map, dof: int):
    from cgjax.reference._generate import kinetic_temperature

    R, V, F = _state(context, {0})
    if not (np.isfinite(R).all() and np.isfinite(F).all() and np.isfinite(V).all()):
        raise RuntimeError("non-finite positions, velocities or forces; try a smaller dt")
    T = kinetic_temperature(V, s.masses, dof)
    if not config.temperature / 3 < T < 3 * config.temperature:
        raise RuntimeError(f"kinetic temperature {T:.1f} K is far from {config.temperature} K")
    check_copies_apart(R, s.n_atoms, config.cutoff)
    shape = (config.copies, s.n_atoms, 3)
    return cg_map.map_positions(R.reshape(shape)), cg_map.map_forces(F.reshape(shape)), T


def _frames(run: _Run, s: AlanineSystem, config: AlanineConfig, provenance: dict):
    from cgjax import data

    P = np.asarray(run.positions, np.float32).reshape(-1, config.copies, 6, 3)
    F = np.asarray(run.forces, np.float32).reshape(-1, config.copies, 6, 3)
    T = P.shape[0]
    elements = [e for _, _, e in ALANINE_BEADS]
    kinds = sorted(set(elements))
    return data.Frames(
        P.transpose(1, 0, 2, 3).reshape(-1, 6, 3),  # copy-major: copy k is frames [kT, (k+1)T)
        np.asarray([kinds.index(e) for e in elements], np.int32),
        s.bead_masses,
        forces=F.transpose(1, 0, 2, 3).reshape(-1, 6, 3),
        box=None,
        temperature=config.temperature,
        dt=config.save_every,
        provenance=provenance,
        metadata={
            "system": "alanine_dipeptide",
            "copies": config.copies,
            "frames_per_copy": T,
            "bead_names": list(BEAD_NAMES),
            "species_names": kinds,
            "atomic_numbers": [ATOMIC_NUMBERS[e] for e in elements],
            "aa_temperature": np.asarray(run.temperatures),
            "aa_temperature_mean": float(np.mean(run.temperatures)),
            "mapping": "slice; each bead's force adds its constrained hydrogens' forces",
            **({} if run.bias is None else {"bias": run.bias.to_json()}),
        },
    )


def generate_alanine(
    config: AlanineConfig,
    out: str | os.PathLike,
    *,
    progress: bool = True,
    provenance: dict | None = None,
):
    """Runs the capped-alanine reference and saves its 6-bead frames to ``out``.

    Protocol: copies on a lattice (``spacing`` nm apart), energy minimisation,
    ``equilibration`` ps then ``production`` ps of ``LangevinMiddleIntegrator``
    at ``temperature``, saving mapped positions and forces every ``save_every``
    ps. Every ``checkpoint_every`` ps the run is saved to ``out + ".partial.npz"``;
    the same command resumes from it; only ``production`` (to extend or end a
    run) and ``checkpoint_every`` may change, anything else raises.

    Args:
      config: the :class:`AlanineConfig`.
      out: the ``.npz`` to write (:class:`cgjax.data.Frames`).
      progress: tqdm bars.
      provenance: extra provenance entries (e.g. the command line).

    Returns:
      :class:`cgjax.data.Frames`: positions ``[copies * T, 6, 3]`` (nm, copy-major,
      ``T = production / save_every``), forces ``[copies * T, 6, 3]`` (kJ/mol/nm),
      bead masses (amu, heavy atom with its hydrogens), no box.

    Raises:
      RuntimeError: non-finite values, a runaway temperature, or copies that
        came within the cutoff; the checkpoint stays for inspection.
    """
    import openmm
    from tqdm.auto import tqdm

    from cgjax import data
    from cgjax.data import constrained_slice_map

    s = alanine_system(config)
    cg_map = constrained_slice_map(s.bead_atoms, s.constraints, s.n_atoms)
    context, integrator = _context(openmm, s, config)
    dof = 3 * s.system.getNumParticles() - s.system.getNumConstraints()
    n_save = config.steps(config.save_every, "save_every")
    n_frames = config.steps(config.production, "production") // n_save
    every = max(1, round(config.checkpoint_every / config.save_every))
    ckpt = _checkpoint_path(out)
    run = _resume(ckpt, context, config)
    if run is None:
        n_eq = config.steps(config.equilibration, "equilibration") // n_save
        if config.metad > 0:
            n_eq += config.steps(config.metad, "metad") // config.steps(
                config.metad_stride, "metad_stride"
            )
        with tqdm(total=n_eq, desc="alanine equilibrate", disable=not progress) as bar:
            bias = _equilibrate(openmm, context, integrator, s, config, bar)
        run = _Run([], [], [], bias)
        _save_checkpoint(ckpt, context, run, config)
    if run.bias is not None:
        check_bias_energy(context, s, run.bias)
    with tqdm(
        total=n_frames, initial=len(run.positions), desc="alanine production",
        unit="ps", disable=not progress, mininterval=10,
    ) as bar:  # fmt: skip
        while len(run.positions) < n_frames:
            integrator.step(n_save)
            P, F, T = _frame(context, s, config, cg_map, dof)
            run.positions.append(P.astype(np.float32))
            run.forces.append(F.astype(np.float32))
            run.temperatures.append(T)
            bar.set_postfix(T=f"{T:.1f}")
            bar.update()
            if len(run.positions) % every == 0:
                _save_checkpoint(ckpt, context, run, config)
    prov = data.provenance(
        "cgjax.reference.alanine",
        config=dataclasses.asdict(config),
        force_field=["amber14-all.xml", "implicit/obc2.xml"],
        structure="openmmtools 0.27.0 alanine-dipeptide-gbsa/alanine-dipeptide.pdb",
        openmm_version=openmm.__version__,
        n_atoms_per_copy=s.n_atoms,
        n_constraints_per_copy=len(s.constraints),
        map=cg_map.describe(),
        **(provenance or {}),
    )
    frames = _frames(run, s, config, prov)
    frames.save(out)
    os.remove(ckpt)
    return frames
