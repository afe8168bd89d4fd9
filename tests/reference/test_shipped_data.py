"""The shipped datasets: contents, provenance, and the acceptance numbers of the reference.

The observables JSON beside each trajectory is recomputed here from the
shipped trajectory, so the stored numbers are the trajectory's, and then the
physics is checked: SPC/E COM-COM RDF first peak and diffusion coefficient,
Rahman argon's diffusion coefficient, methane's RDF normalisation and C-C
contact and the precision of its D, and the AA kinetic temperature.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
import pytest

from cgjax import datasets, units
from cgjax.reference import reference_observables

RAHMAN_D = 2.43e-5  # cm^2/s, A. Rahman, Phys. Rev. 136, A405 (1964)


@pytest.fixture(scope="module", params=list(datasets.DATASETS))
def shipped(request):
    name = request.param
    return name, datasets.load(name), datasets.load_observables(name)


def test_total_size_under_budget():
    root = str(resources.files("cgjax.datasets"))
    # the fluids' budget; free-space molecules have their own (test_alanine_reference.py)
    files = [
        os.path.join(root, f)
        for f in os.listdir(root)
        if not f.startswith(tuple(datasets.MOLECULES))
    ]
    size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    assert size < 30e6, f"shipped datasets take {size / 1e6:.1f} MB, budget 30 MB"


def test_unknown_dataset_names_the_shipped_ones():
    shipped = "spce_512, argon_864, methane_512"
    with pytest.raises(ValueError, match=f"unknown dataset 'water'; shipped: {shipped}"):
        datasets.load("water")


def test_contents_and_provenance(shipped):
    name, frames, ref = shipped
    system = name.split("_")[0]
    n = int(name.split("_")[1])
    assert frames.positions.shape[1:] == (n, 3) and frames.positions.dtype == np.float32
    assert frames.forces.shape == frames.positions.shape and frames.forces.dtype == np.float32
    assert frames.velocities is None
    assert frames.dt == pytest.approx(0.2)
    assert frames.box.shape == (3, 3) and np.allclose(frames.box, np.diag(np.diag(frames.box)))
    p = frames.provenance
    assert p["command"].startswith(f"python -m cgjax.reference {system} --out ")
    assert p["config"]["system"] == system and p["config"]["n_molecules"] == n
    assert p["integrators"]["production"].startswith("NoseHooverIntegrator")
    assert "openmm" in p["versions"]
    assert ref["source"] == f"{name}.npz"
    assert ref["command"].startswith("python -m cgjax.reference observables ")
    assert ref["n_frames"] == frames.n_frames and ref["source_provenance"] == p
    # COM beads carry every atomic force; their sum is the net force, ~0.
    net = np.linalg.norm(frames.forces.astype(np.float64).sum(1), axis=-1)
    rms = np.sqrt(np.mean(frames.forces.astype(np.float64) ** 2))
    assert np.max(net) < 3e-3 * np.sqrt(n) * rms


def test_wrapped_load_is_in_the_box(shipped):
    name, frames, _ = shipped
    wrapped = datasets.load(name, wrapped=True)
    L = np.diag(frames.box)
    assert np.all(wrapped.positions >= 0) and np.all(wrapped.positions < L)
    d = (wrapped.positions - frames.positions) / L
    np.testing.assert_allclose(d, np.round(d), atol=1e-4)


def _recompute(frames, ref, adf: bool):
    params = ref["parameters"]
    return reference_observables(
        frames,
        adf_cutoffs=tuple(params["adf_cutoffs"]) if adf else (),
        fit_window=tuple(params["fit_window"]),
        rdf_r_max=params["rdf_r_max"],
        rdf_bin=params["rdf_bin"],
        n_blocks=params["n_blocks"],
        max_lag=params["max_lag"],
    )


def test_observables_json_is_the_trajectorys(shipped):
    _, frames, ref = shipped
    again = _recompute(frames, ref, adf=False)
    np.testing.assert_allclose(again["rdf"]["g"], ref["rdf"]["g"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(again["msd"]["msd_nm2"], ref["msd"]["msd_nm2"], rtol=1e-4)
    d = again["diffusion"]
    assert d["D_cm2_per_s"] == pytest.approx(ref["diffusion"]["D_cm2_per_s"], rel=1e-4)
    assert d["D_err_cm2_per_s"] == pytest.approx(ref["diffusion"]["D_err_cm2_per_s"], rel=1e-3)
    assert again["temperature"] == ref["temperature"]


@pytest.mark.slow
def test_adf_json_is_the_trajectorys(shipped):
    _, frames, ref = shipped
    again = _recompute(frames, ref, adf=True)
    assert len(again["adf"]) == len(ref["adf"])
    for a, b in zip(again["adf"], ref["adf"], strict=True):
        assert a["cutoff_nm"] == b["cutoff_nm"]
        np.testing.assert_allclose(a["p_per_deg"], b["p_per_deg"], rtol=1e-4, atol=1e-7)


def test_aa_temperature_within_one_percent(shipped):
    _, frames, ref = shipped
    T = np.asarray(frames.metadata["aa_temperature"])
    assert T.shape == (frames.n_frames,)
    assert ref["temperature"]["mean_K"] == pytest.approx(T.mean())
    assert abs(T.mean() / frames.temperature - 1) < 0.01


def test_spce_rdf_first_peak():
    rdf = datasets.load_observables("spce_512")["rdf"]
    assert rdf["bin_width_nm"] == 0.005
    assert 2.75 <= rdf["first_peak_r_nm"] / units.angstrom <= 2.85
    assert 2.9 <= rdf["first_peak_g"] <= 3.4
    # g -> 1 at long range: the normalisation and the density are right.
    r, g = np.asarray(rdf["r_nm"]), np.asarray(rdf["g"])
    assert abs(np.mean(g[r > 0.9]) - 1) < 0.02


def test_spce_diffusion():
    d = datasets.load_observables("spce_512")["diffusion"]
    assert d["fit_window_ps"] == [5.0, 20.0] and d["n_blocks"] == 5
    assert 2.3e-5 <= d["D_cm2_per_s"] <= 3.0e-5
    assert d["D_err_cm2_per_s"] < 0.1 * d["D_cm2_per_s"]


def test_spce_made_with_the_converged_protocol():
    """Issue 23: NH equilibration before production, PME tolerance 1e-4, 200 ps."""
    p = datasets.load("spce_512").provenance
    assert p["config"]["nh_equilibration"] >= 10.0 and p["config"]["equilibration"] >= 50.0
    assert p["config"]["ewald_tolerance"] == p["ewald_tolerance"] == 1e-4
    assert p["config"]["production"] == 200.0
    assert "--nh-equilibration" in p["command"] and "--ewald-tolerance" in p["command"]


def test_argon_diffusion_near_rahman():
    d = datasets.load_observables("argon_864")["diffusion"]
    assert d["fit_window_ps"] == [2.0, 10.0] and d["n_blocks"] == 5
    assert abs(d["D_cm2_per_s"] / RAHMAN_D - 1) < 0.10
    assert d["D_err_cm2_per_s"] < 0.1 * d["D_cm2_per_s"]


def test_methane_structure_and_diffusion():
    # Paper 004's methane as printed (epsilon_C = 0.066 kJ/mol, no LJ on H):
    # kB T / epsilon ~ 14 at 111.7 K, a dense supercritical fluid, not the
    # normal-boiling liquid of the state point. These checks are the
    # normalisation and the C-C contact, not agreement with experiment.
    ref = datasets.load_observables("methane_512")
    rdf = ref["rdf"]
    assert rdf["bin_width_nm"] == 0.005
    assert 0.32 <= rdf["first_peak_r_nm"] <= 0.37  # near sigma_C = 0.3345 nm
    r, g = np.asarray(rdf["r_nm"]), np.asarray(rdf["g"])
    assert abs(np.mean(g[r > 0.9]) - 1) < 0.02
    assert np.all(g[r < 0.25] < 0.01)  # C-C core
    d = ref["diffusion"]
    assert d["fit_window_ps"] == [2.0, 10.0] and d["n_blocks"] == 5
    assert d["D_err_cm2_per_s"] < 0.1 * d["D_cm2_per_s"]
