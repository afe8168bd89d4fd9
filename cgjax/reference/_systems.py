"""All-atom reference systems (SPC/E, TIP3P, argon, methane, methanol, benzene) built in OpenMM.

Every system is a cubic box of identical molecules. The parameters are written
out here rather than read from force-field files, so a dataset's provenance
(which stores :meth:`ReferenceSystem.describe`) is enough to rebuild it.
Units are OpenMM's and cgjax's: nm, ps, kJ/mol, amu, K, e.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from cgjax import units
from cgjax.reference._openmm import require_openmm

__all__ = [
    "SYSTEMS",
    "BoxTooSmallError",
    "Molecule",
    "ReferenceSystem",
    "box_length",
    "EWALD_TOLERANCE",
    "build_system",
    "atom_species",
    "initial_positions",
    "molecule_index",
]


class BoxTooSmallError(ValueError):
    """The cube is not larger than twice the cutoff (minimum image would fail)."""


_MASS = {"H": 1.008, "C": 12.011, "O": 15.9994, "Ar": 39.948}


@dataclasses.dataclass(frozen=True)
class Molecule:
    """One molecule type: atoms, non-bonded parameters, geometry and bonded terms.

    Attributes:
      name: residue name.
      atoms: atom names ``[n]``; the element is the name without trailing digits.
      masses: ``[n]`` (amu).
      charges: ``[n]`` (e).
      sigmas: ``[n]`` LJ sigma (nm); Lorentz-Berthelot rules for unlike pairs.
      epsilons: ``[n]`` LJ epsilon (kJ/mol).
      geometry: ``[n, 3]`` reference positions (nm), any orientation.
      constraints: ``(i, j, length nm)`` distance constraints.
      angles: ``(i, j, k, theta0 rad, k_theta kJ/mol/rad^2)`` harmonic angles,
        ``E = k_theta / 2 (theta - theta0)^2`` (OpenMM's convention).
      virtual_sites: ``(i, (a, b, c), (wa, wb, wc))``: site ``i`` (mass 0) sits at
        ``wa x_a + wb x_b + wc x_c`` (OpenMM ``ThreeParticleAverageSite``); its
        forces are carried by ``a, b, c``.
    """

    name: str
    atoms: tuple[str, ...]
    masses: tuple[float, ...]
    charges: tuple[float, ...]
    sigmas: tuple[float, ...]
    epsilons: tuple[float, ...]
    geometry: tuple[tuple[float, float, float], ...]
    constraints: tuple[tuple[int, int, float], ...] = ()
    angles: tuple[tuple[int, int, int, float, float], ...] = ()
    virtual_sites: tuple[tuple[int, tuple[int, int, int], tuple[float, float, float]], ...] = ()

    def __post_init__(self):
        n = len(self.atoms)
        for field in ("masses", "charges", "sigmas", "epsilons", "geometry"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{self.name}: {field} has {len(getattr(self, field))} entries")
        # Every system here is a neutral molecule; a charged one under PME would
        # silently get a neutralising background.
        if abs(sum(self.charges)) > 1e-12:
            raise ValueError(f"{self.name} is not neutral: total charge {sum(self.charges)} e")
        for i, _, weights in self.virtual_sites:
            if self.masses[i] != 0.0 or abs(sum(weights) - 1.0) > 1e-12:
                raise ValueError(
                    f"{self.name}: virtual site {i} needs mass 0 and weights summing to 1"
                )

    @property
    def mass(self) -> float:
        """Molar mass (amu = g/mol)."""
        return float(sum(self.masses))

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(a.rstrip("0123456789") for a in self.atoms)

    def centred_geometry(self) -> np.ndarray:
        """``[n, 3]`` geometry (nm) with its centre of mass at the origin."""
        x = np.asarray(self.geometry, np.float64)
        m = np.asarray(self.masses)
        return x - m @ x / m.sum()


def _water(name, *, r_oh, theta, q_o, sigma_o, epsilon_o):
    """A rigid three-site water: O-H, O-H and H-H distances constrained (OpenMM uses SETTLE)."""
    h = (r_oh * math.sin(theta / 2), r_oh * math.cos(theta / 2), 0.0)
    r_hh = 2.0 * r_oh * math.sin(theta / 2)
    return Molecule(
        name=name,
        atoms=("O", "H1", "H2"),
        masses=(_MASS["O"], _MASS["H"], _MASS["H"]),
        charges=(q_o, -q_o / 2, -q_o / 2),
        # sigma_H = epsilon_H = 0: O-H and H-H pairs have no LJ term.
        sigmas=(sigma_o, 0.0, 0.0),
        epsilons=(epsilon_o, 0.0, 0.0),
        geometry=((0.0, 0.0, 0.0), h, (-h[0], h[1], 0.0)),
        constraints=((0, 1, r_oh), (0, 2, r_oh), (1, 2, r_hh)),
    )


# Paper 004 Sec. 3; H. J. C. Berendsen et al., J. Phys. Chem. 91, 6269 (1987).
SPCE = _water(
    "SPC/E",
    r_oh=1.000 * units.angstrom,
    theta=math.radians(109.47),
    q_o=-0.8476,
    sigma_o=3.166 * units.angstrom,
    epsilon_o=0.650,
)

# W. L. Jorgensen et al., J. Chem. Phys. 79, 926 (1983); the values of OpenMM's tip3p.xml.
TIP3P = _water(
    "TIP3P",
    r_oh=0.9572 * units.angstrom,
    theta=math.radians(104.52),
    q_o=-0.834,
    sigma_o=0.31507524065751241,
    epsilon_o=0.635968,
)

# Paper 004 prints epsilon_Ar = 0.238 (kcal/mol, mislabelled kJ/mol); we use
# Rahman's epsilon / kB = 119.8 K = 0.99607 kJ/mol (0.238 kcal/mol) and
# sigma = 3.405 A, the argon of A. Rahman, Phys. Rev. 136, A405 (1964).
ARGON = Molecule(
    name="Ar",
    atoms=("Ar",),
    masses=(_MASS["Ar"],),
    charges=(0.0,),
    sigmas=(3.405 * units.angstrom,),
    epsilons=(119.8 * units.kB,),
    geometry=((0.0, 0.0, 0.0),),
)


def _methane():
    """All-atom five-site methane, parameters of paper 004 Sec. 3.

    The paper prints q_H = -0.06 e, which with q_C = -0.24 e is not neutral;
    q_H = +0.06 e (as in OPLS-AA, whose charges these are) makes it neutral.
    The four C-H bonds (1.09 A) are constrained and the six H-C-H angles are
    harmonic (OPLS-AA k = 33 kcal/mol/rad^2 in E = k (theta - theta0)^2), so
    the molecule bends but does not stretch; constraining all ten distances
    instead would over-determine a rigid tetrahedron.
    """
    r_ch = 1.09 * units.angstrom
    theta = math.acos(-1.0 / 3.0)  # tetrahedral, 109.47 degrees
    k_theta = 2.0 * 33.0 * units.kcal  # 276.144 kJ/mol/rad^2 in OpenMM's k/2 convention
    h = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3.0) * r_ch
    pairs = [(i, j) for i in range(1, 5) for j in range(i + 1, 5)]
    return Molecule(
        name="CH4",
        atoms=("C", "H1", "H2", "H3", "H4"),
        masses=(_MASS["C"],) + (_MASS["H"],) * 4,
        charges=(-0.24,) + (0.06,) * 4,
        sigmas=(3.345 * units.angstrom,) + (0.0,) * 4,
        # Paper 004 prints 0.066 kJ/mol, used as printed (OPLS-AA's is 0.066 kcal/mol).
        epsilons=(0.066,) + (0.0,) * 4,
        geometry=((0.0, 0.0, 0.0),) + tuple(tuple(float(v) for v in row) for row in h),
        constraints=tuple((0, i, r_ch) for i in range(1, 5)),
        angles=tuple((i, 0, j, theta, k_theta) for i, j in pairs),
    )


METHANE = _methane()

_TRAPPE_CH3 = 15.035  # amu, TraPPE-UA united-atom masses (C + n H)
_TRAPPE_CH = 13.019


def _methanol():
    """TraPPE-UA methanol: three sites CH3, O, H.

    B. Chen, J. J. Potoff, J. I. Siepmann, J. Phys. Chem. B 105, 3093 (2001),
    Table 1: CH3 epsilon/kB 98 K, sigma 3.75 A, q +0.265 e; O 93 K, 3.02 A,
    q -0.700 e; H q +0.435 e (no LJ). Bonds fixed (CH3-O 1.43 A, O-H 0.945 A),
    so both are constraints; the CH3-O-H angle is harmonic, theta0 108.5 deg,
    k_theta/kB = 55400 K/rad^2 in TraPPE's ``k_theta/2 (theta - theta0)^2``,
    which is OpenMM's convention.
    """
    r_co, r_oh = 1.43 * units.angstrom, 0.945 * units.angstrom
    theta = math.radians(108.5)
    h = (r_oh * math.cos(theta), r_oh * math.sin(theta), 0.0)
    return Molecule(
        name="MeOH",
        atoms=("C", "O", "H"),
        masses=(_TRAPPE_CH3, _MASS["O"], _MASS["H"]),
        charges=(0.265, -0.700, 0.435),
        sigmas=(3.75 * units.angstrom, 3.02 * units.angstrom, 0.0),
        epsilons=(98.0 * units.kB, 93.0 * units.kB, 0.0),
        geometry=((r_co, 0.0, 0.0), (0.0, 0.0, 0.0), h),
        constraints=((0, 1, r_co), (1, 2, r_oh)),
        angles=((0, 1, 2, theta, 55400.0 * units.kB),),
    )


def _benzene():
    """TraPPE-UA benzene: a rigid regular hexagon of six CH sites.

    C. D. Wick, M. G. Martin, J. I. Siepmann, J. Phys. Chem. B 104, 8008
    (2000): CH epsilon/kB 50.5 K, sigma 3.695 A, C-C 1.40 A, rigid, no
    charges. A rigid planar ring cannot be built from distance constraints
    alone without redundancy, so sites 0, 2, 4 carry the mass (2 x 13.019 amu
    each) and form a constrained triangle, and sites 1, 3, 5 are virtual sites,
    ``x_1 = (2 x_0 + 2 x_2 - x_4) / 3`` etc. Mass 2 m on alternate sites has the
    same total mass, centre of mass and inertia tensor as m on every site
    (both are 3-fold symmetric in the ring's plane), so the rigid-body
    dynamics are those of the six-site ring.
    """
    r = 1.40 * units.angstrom  # the hexagon's edge equals its circumradius
    ring = [(r * math.cos(k * math.pi / 3), r * math.sin(k * math.pi / 3), 0.0) for k in range(6)]
    heavy = 2.0 * _TRAPPE_CH
    side = r * math.sqrt(3.0)  # distance between sites 0, 2, 4
    w = (2.0 / 3.0, 2.0 / 3.0, -1.0 / 3.0)
    return Molecule(
        name="BNZ",
        atoms=("C1", "C2", "C3", "C4", "C5", "C6"),
        masses=(heavy, 0.0, heavy, 0.0, heavy, 0.0),
        charges=(0.0,) * 6,
        sigmas=(3.695 * units.angstrom,) * 6,
        epsilons=(50.5 * units.kB,) * 6,
        geometry=tuple(ring),
        constraints=((0, 2, side), (2, 4, side), (4, 0, side)),
        virtual_sites=((1, (0, 2, 4), w), (3, (2, 4, 0), w), (5, (4, 0, 2), w)),
    )


METHANOL = _methanol()
BENZENE = _benzene()


@dataclasses.dataclass(frozen=True)
class ReferenceSystem:
    """A molecule type and the default state point and simulation settings for it.

    Attributes:
      name: CLI name.
      molecule: the :class:`Molecule`.
      n_molecules, temperature, density: default state (count, K, g/cm^3).
      cutoff: real-space cutoff (nm).
      switch: LJ switching distance (nm), or ``None`` for a plain truncation.
      pme: PME electrostatics (else a plain cutoff, for uncharged systems).
      dt_fs: default time step (fs).
      notes: where the parameters come from.
    """

    name: str
    molecule: Molecule
    n_molecules: int
    temperature: float
    density: float
    cutoff: float
    switch: float | None
    pme: bool
    dt_fs: float
    notes: str

    def describe(self, **overrides: Any) -> dict:
        """A JSON-able record of every parameter (for provenance)."""
        d = dataclasses.asdict(self)
        d["molecule"]["molar_mass"] = self.molecule.mass
        d.update(overrides)
        return d


SYSTEMS: dict[str, ReferenceSystem] = {
    "spce": ReferenceSystem(
        name="spce",
        molecule=SPCE,
        n_molecules=512,
        temperature=300.0,
        density=0.997,
        cutoff=1.0,
        switch=None,
        pme=True,
        dt_fs=2.0,
        notes="SPC/E, paper 004 Sec. 3 / Berendsen 1987; rigid (SETTLE); PME; 512 waters "
        "at 300 K as in paper 000.",
    ),
    "tip3p": ReferenceSystem(
        name="tip3p",
        molecule=TIP3P,
        n_molecules=512,
        temperature=300.0,
        density=0.997,
        cutoff=1.0,
        switch=None,
        pme=True,
        dt_fs=2.0,
        notes="TIP3P, Jorgensen 1983 (OpenMM tip3p.xml values); rigid (SETTLE); PME; 512 "
        "waters at 300 K as in paper 000.",
    ),
    "argon": ReferenceSystem(
        name="argon",
        molecule=ARGON,
        n_molecules=864,
        temperature=94.4,
        density=1.374,
        # Rahman truncated at 3.3 sigma; a switch over the last 0.3 sigma keeps
        # the force continuous, which a dynamics reference wants.
        cutoff=3.3 * 3.405 * units.angstrom,
        switch=3.0 * 3.405 * units.angstrom,
        pme=False,
        dt_fs=5.0,
        notes="Liquid argon of Rahman 1964: 864 atoms, 94.4 K, 1.374 g/cm^3, "
        "epsilon/kB = 119.8 K, sigma = 3.405 A, cutoff 3.3 sigma (switched from 3.0 sigma).",
    ),
    "methane": ReferenceSystem(
        name="methane",
        molecule=METHANE,
        n_molecules=512,
        # Liquid methane at its normal boiling point (111.7 K, 0.4228 g/cm^3);
        # paper 004 does not state its state point.
        temperature=111.7,
        density=0.4228,
        cutoff=1.0,
        switch=None,
        pme=True,
        dt_fs=2.0,
        notes="All-atom methane, paper 004 Sec. 3 (q_H = +0.06 e for neutrality); C-H "
        "constrained, H-C-H harmonic (OPLS-AA); state point: normal boiling liquid.",
    ),
    "methanol": ReferenceSystem(
        name="methanol",
        molecule=METHANOL,
        n_molecules=512,
        # Paper 003 Fig. 3: methanol at 0.77 g/cm^3 from 200 to 400 K.
        temperature=300.0,
        density=0.77,
        cutoff=1.0,
        switch=None,
        pme=True,
        dt_fs=2.0,
        notes="TraPPE-UA methanol (Chen, Potoff, Siepmann 2001): CH3/O/H, bonds "
        "constrained, CH3-O-H harmonic; PME; 1.0 nm cutoff with dispersion correction "
        "(TraPPE: 1.4 nm + tail correction).",
    ),
    "benzene": ReferenceSystem(
        name="benzene",
        molecule=BENZENE,
        n_molecules=512,
        # Paper 003 SI centre state point of benzene.
        temperature=700.0,
        density=0.80,
        cutoff=1.2,
        switch=None,
        pme=False,
        dt_fs=2.0,
        notes="TraPPE-UA benzene (Wick, Martin, Siepmann 2000): six CH sites, rigid "
        "(constrained triangle of massive sites + 3 virtual sites); no charges; "
        "1.2 nm cutoff with dispersion correction.",
    ),
}


# PME's relative force error tolerance. OpenMM's default, 5e-4, is what the
# first shipped SPC/E used; 1e-4 is the generator's default (see
# cgjax/datasets/README.md, "SPC/E diffusion: protocol study").
EWALD_TOLERANCE = 1e-4


def box_length(n_molecules: int, molar_mass: float, density: float) -> float:
    """Edge (nm) of the cube holding ``n_molecules`` of ``molar_mass`` (g/mol) at ``density``.

    ``density`` is in g/cm^3; ``units.g_per_cm3`` converts it to amu/nm^3.
    """
    return (n_molecules * molar_mass / (density * units.g_per_cm3)) ** (1.0 / 3.0)


def build_system(
    spec: ReferenceSystem,
    n_molecules: int,
    box: float,
    *,
    cutoff: float,
    ewald_tolerance: float = EWALD_TOLERANCE,
):
    """The OpenMM ``System`` of ``n_molecules`` copies of ``spec.molecule`` in a cube.

    Intramolecular pairs are excluded from the non-bonded force (no 1-4 pairs
    exist in these molecules). The centre-of-mass motion is removed
    (``CMMotionRemover``), so the kinetic degrees of freedom are
    ``3 n_atoms - n_constraints - 3``. The long-range dispersion correction is
    on; it shifts energy and pressure, not forces.

    Args:
      spec: the :class:`ReferenceSystem`.
      n_molecules: number of molecules.
      box: cube edge (nm).
      cutoff: real-space cutoff (nm), less than half the box.
      ewald_tolerance: PME's relative force error tolerance (OpenMM's
        ``setEwaldErrorTolerance``, dimensionless; OpenMM's own default is
        5e-4). Ignored for systems without PME.

    Returns:
      ``openmm.System``.
    """
    openmm = require_openmm()
    mol = spec.molecule
    if not cutoff < box / 2:
        raise BoxTooSmallError(
            f"cutoff {cutoff:.4g} nm must be less than half the box ({box / 2:.4g} nm); "
            "use more molecules or a shorter --cutoff"
        )
    switch = spec.switch
    if switch is not None and switch >= cutoff:
        switch = None  # a shortened cutoff (small test boxes) truncates plainly
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(
        openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box)
    )
    nb = openmm.NonbondedForce()
    nb.setNonbondedMethod(
        openmm.NonbondedForce.PME if spec.pme else openmm.NonbondedForce.CutoffPeriodic
    )
    nb.setCutoffDistance(cutoff)
    if spec.pme:
        if not 0 < ewald_tolerance < 0.1:
            raise ValueError(f"ewald_tolerance must be in (0, 0.1), got {ewald_tolerance}")
        nb.setEwaldErrorTolerance(ewald_tolerance)
    if switch is not None:
        nb.setUseSwitchingFunction(True)
        nb.setSwitchingDistance(switch)
    nb.setUseDispersionCorrection(True)
    angles = openmm.HarmonicAngleForce() if mol.angles else None
    n = len(mol.atoms)
    for m in range(n_molecules):
        first = m * n
        for a in range(n):
            system.addParticle(mol.masses[a])
            # OpenMM needs sigma > 0 even where epsilon = 0; sigma is then unused.
            sigma = mol.sigmas[a] if mol.epsilons[a] > 0 else 1.0
            nb.addParticle(mol.charges[a], sigma, mol.epsilons[a])
        for i, j, length in mol.constraints:
            system.addConstraint(first + i, first + j, length)
        for i, j, k, theta0, k_theta in mol.angles:
            angles.addAngle(first + i, first + j, first + k, theta0, k_theta)
        for i, (a, b, c), (wa, wb, wc) in mol.virtual_sites:
            site = openmm.ThreeParticleAverageSite(first + a, first + b, first + c, wa, wb, wc)
            system.setVirtualSite(first + i, site)
        for i in range(n):
            for j in range(i + 1, n):
                nb.addException(first + i, first + j, 0.0, 1.0, 0.0)
    system.addForce(nb)
    if angles is not None:
        system.addForce(angles)
    system.addForce(openmm.CMMotionRemover())
    return system


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``[n, 3, 3]`` rotation matrices, uniform on SO(3) (normalised Gaussian quaternions)."""
    q = rng.standard_normal((n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)


def _lattice(n_molecules: int, box: float) -> np.ndarray:
    """``[n, 3]`` lattice sites in the cube: FCC when ``n = 4 k^3``, else simple cubic."""
    k = round((n_molecules / 4) ** (1 / 3))
    if 4 * k**3 == n_molecules:
        from cgjax.simulate import fcc_lattice

        sites, L = fcc_lattice(k, n_molecules / box**3)
        return np.asarray(sites) * (box / L)
    k = math.ceil(n_molecules ** (1 / 3) - 1e-9)
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return (grid[:n_molecules] + 0.5) * (box / k)


def initial_positions(
    spec: ReferenceSystem, n_molecules: int, box: float, rng: np.random.Generator
) -> np.ndarray:
    """``[n_molecules * n_atoms, 3]`` positions (nm): molecules on a lattice, randomly oriented.

    Each molecule's atoms are contiguous and whole (not wrapped into the box).
    """
    sites = _lattice(n_molecules, box)
    body = spec.molecule.centred_geometry()
    rot = _random_rotations(rng, n_molecules)
    return (sites[:, None, :] + np.einsum("mij,aj->mai", rot, body)).reshape(-1, 3)


def molecule_index(spec: ReferenceSystem, n_molecules: int) -> np.ndarray:
    """``[n_atoms]`` molecule number of each atom."""
    return np.repeat(np.arange(n_molecules), len(spec.molecule.atoms))


def atom_species(spec: ReferenceSystem, n_molecules: int) -> tuple[np.ndarray, list[str]]:
    """``([n_atoms] int, element names)``: species index of each atom by element."""
    elements = list(dict.fromkeys(spec.molecule.elements))
    per_mol = [elements.index(e) for e in spec.molecule.elements]
    return np.tile(np.asarray(per_mol, np.int32), n_molecules), elements
