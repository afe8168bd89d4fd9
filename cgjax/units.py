"""Units: nm, ps, kJ/mol, amu (g/mol), K, elementary charge.

This is the unit system of OpenMM and GROMACS. In it ``F = m a`` needs no
conversion factor (1 amu nm^2 ps^-2 = 1 kJ/mol), so jax-md integrators run on
it unchanged. Every constant here is the size of the named unit *in cgjax
units*, so a config writes ``6.0 * units.angstrom`` (= 0.6 nm) and a result is
reported as ``D / units.cm2_per_s``.

Constants are CODATA 2018 exact values (SI redefinition) where those exist.

References:
  E. Tiesinga et al., CODATA Recommended Values of the Fundamental Physical
  Constants: 2018, Rev. Mod. Phys. 93, 025010 (2021).
"""

from __future__ import annotations

# --- SI-exact defining constants (CODATA 2018) -------------------------------
AVOGADRO = 6.02214076e23  # 1/mol
BOLTZMANN_SI = 1.380649e-23  # J/K
ELEMENTARY_CHARGE_SI = 1.602176634e-19  # C
VACUUM_PERMITTIVITY_SI = 8.8541878128e-12  # F/m (CODATA 2018, measured)
DALTON_SI = 1.66053906660e-27  # kg (CODATA 2018, measured)

# --- base units ---------------------------------------------------------------
nm = 1.0
ps = 1.0
kJ_per_mol = 1.0
amu = 1.0
kelvin = 1.0
e = 1.0  # elementary charge

# --- length ---------------------------------------------------------------------
angstrom = 0.1 * nm
bohr = 0.0529177210903 * nm
um = 1e3 * nm
cm = 1e7 * nm
m = 1e9 * nm

# --- time -----------------------------------------------------------------------
fs = 1e-3 * ps
ns = 1e3 * ps
us = 1e6 * ps
s = 1e12 * ps

# --- energy (per mole of particles) -------------------------------------------
kJ = kJ_per_mol
J = 1e-3 * kJ
kcal = 4.184 * kJ  # thermochemical calorie, exact
kcal_per_mol = kcal
eV = ELEMENTARY_CHARGE_SI * AVOGADRO * J  # 96.485332... kJ/mol
hartree = 2625.4996394799 * kJ  # CODATA 2018

# --- thermodynamics ---------------------------------------------------------------
kB = BOLTZMANN_SI * AVOGADRO * J  # 0.00831446261815324 kJ/mol/K
R_gas = kB


def kT(temperature: float) -> float:
    """Thermal energy ``kB * T`` in kJ/mol for a temperature in K."""
    return kB * temperature


def beta(temperature: float) -> float:
    """Inverse thermal energy ``1 / (kB T)`` in mol/kJ for a temperature in K."""
    return 1.0 / (kB * temperature)


# --- electrostatics ---------------------------------------------------------------
# Coulomb constant 1/(4 pi eps0) in kJ/mol nm e^-2 (OpenMM's ONE_4PI_EPS0).
coulomb_constant = (
    (ELEMENTARY_CHARGE_SI**2 * AVOGADRO / (4.0 * 3.141592653589793 * VACUUM_PERMITTIVITY_SI))
    * 1e9
    * J
)

# --- derived units users meet in papers ------------------------------------------
gram_per_mol = amu
g_per_cm3 = AVOGADRO / 1e21 * amu / nm**3  # 602.214076 amu/nm^3
cm2_per_s = cm**2 / s  # 100 nm^2/ps; D of water ~ 2.3e-5 cm^2/s
bar = 1e5 * AVOGADRO * 1e-27 * 1e-3 * kJ / nm**3  # 0.0602214076 kJ/mol/nm^3
atm = 1.01325 * bar
kcal_per_mol_per_angstrom = kcal / angstrom  # force, 41.84 kJ/mol/nm
eV_per_angstrom = eV / angstrom
