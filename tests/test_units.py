"""cgjax.units against CODATA 2018 values (NIST reference, SI units)."""

import numpy as np
import pytest

from cgjax import units


def test_boltzmann_constant():
    # R = 8.314462618... J/(mol K) (CODATA 2018, exact)
    assert units.kB == pytest.approx(8.314462618e-3, rel=1e-10)
    assert units.kT(300.0) == pytest.approx(2.494338785, rel=1e-9)
    assert units.beta(300.0) * units.kT(300.0) == pytest.approx(1.0)


def test_energy_conversions():
    assert units.kcal == 4.184
    # 1 eV * N_A = 96.48533212... kJ/mol (CODATA 2018, exact)
    assert units.eV == pytest.approx(96.48533212, rel=1e-10)
    # 1 hartree = 2625.4996394799 kJ/mol
    assert units.hartree == pytest.approx(2625.49963948, rel=1e-10)


def test_length_time():
    assert units.angstrom == 0.1
    assert 6.0 * units.angstrom == pytest.approx(0.6)
    assert units.fs == 1e-3 and units.ns == 1e3
    assert units.bohr == pytest.approx(0.0529177210903, rel=1e-12)


def test_newton_needs_no_factor():
    # 1 amu * nm^2 / ps^2 per particle, times N_A, is exactly 1 kJ/mol in SI.
    si = units.DALTON_SI * (1e-9) ** 2 / (1e-12) ** 2 * units.AVOGADRO / 1e3
    assert si == pytest.approx(1.0, rel=1e-9)


def test_coulomb_constant_matches_openmm():
    # e^2 N_A / (4 pi eps0) with CODATA 2018 e, N_A, eps0 = 8.8541878128e-12 F/m
    assert units.coulomb_constant == pytest.approx(138.9354576444, rel=1e-10)
    # OpenMM's ONE_4PI_EPS0 = 138.935456 is the same constant rounded
    assert units.coulomb_constant == pytest.approx(138.935456, rel=2e-8)


def test_derived_units():
    # 1 g/cm^3 = N_A / 1e21 amu/nm^3
    assert units.g_per_cm3 == pytest.approx(602.214076, rel=1e-12)
    # water at 0.997 g/cm^3: 33.3 molecules per nm^3
    assert 0.997 * units.g_per_cm3 / 18.01528 == pytest.approx(33.33, rel=1e-3)
    assert units.cm2_per_s == pytest.approx(100.0)
    # D of argon (Rahman 1964) 2.43e-5 cm^2/s = 2.43e-3 nm^2/ps
    assert 2.43e-5 * units.cm2_per_s == pytest.approx(2.43e-3)
    assert units.bar == pytest.approx(0.0602214076, rel=1e-12)
    assert units.kcal_per_mol_per_angstrom == pytest.approx(41.84)
    # paper 004's A bracket: 0.2 eV A^2 in kJ/mol nm^2
    assert 0.2 * units.eV * units.angstrom**2 == pytest.approx(0.19297066, rel=1e-7)
    assert np.isfinite(units.atm)
