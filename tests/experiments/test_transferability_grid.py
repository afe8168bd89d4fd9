"""Paper 003 Fig. 5's cross-molecule grid (``experiments/transferability_grid.py``): its smoke
preset through ``python -m cgjax.run`` (a tiny generated methane grid: 300 K at two densities,
2 trials) and its errors on bad state points."""

import json
import math
import os

import pytest

from cgjax import reference, run

pytest.importorskip("openmm", reason="OpenMM (the 'reference' extra) generates the AA grid")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = os.path.join(ROOT, "experiments", "transferability_grid.py")
CFG = os.path.join(ROOT, "configs", "transferability_grid.py")
POINTS = [(300.0, 0.30), (300.0, 0.16)]
WORKFLOWS = ("single_state_baseline", "single_state_transfer", "multi_state")


def _run(workdir, *extra):
    return run.main([EXP, f"--config={CFG}:smoke", f"--workdir={workdir}", *extra])


@pytest.mark.slow
def test_transferability_grid_smoke(tmp_path):
    wd = tmp_path / "g"
    res = _run(wd)
    table = res["tae_table"]
    # every (workflow, state point) of the methane grid, once
    assert sorted((r["workflow"], r["T_K"], r["rho_g_cm3"]) for r in table) == sorted(
        (wf, T, rho) for wf in WORKFLOWS for T, rho in POINTS
    )
    for r in table:
        assert r["molecule"] == "methane" and r["n_trials"] == 2
        vals = r["tae_trials_A"]
        assert all(v is not None and math.isfinite(v) and 0 < v < 20 for v in vals)
        assert r["tae_mean_A"] == pytest.approx(sum(vals) / 2)
        # sample std of two values: |a - b| / sqrt(2)
        assert r["tae_std_A"] == pytest.approx(abs(vals[0] - vals[1]) / math.sqrt(2))
    runs = res["runs"]
    assert len(runs) == 2 * len(WORKFLOWS) * len(POINTS)
    # the trials really differ: seeds, starting frames, thermostat seeds, and TAEs
    for wf in WORKFLOWS:
        for T, rho in POINTS:
            key = lambda x: (x["workflow"], x["T_K"], x["rho_g_cm3"], x["trial"])  # noqa: E731
            a, b = (next(x for x in runs if key(x) == (wf, T, rho, k)) for k in (0, 1))
            assert a["thermostat_seed"] != b["thermostat_seed"]
            assert a["rdf_tae_A"] != b["rdf_tae_A"]
    t0, t1 = res["training"]["methane trial0"], res["training"]["methane trial1"]
    assert set(t0) == {"T300_rho0.3", "T300_rho0.16", "multi"}
    for name in t0:  # different split and initial weights: different validation errors
        assert t0[name]["val_force_rmse"] != t1[name]["val_force_rmse"]
    assert t0["multi"]["n_train_frames"] == 8  # the single-state size, 4 frames per point
    # the centre model (300 K, 0.16 g/cm^3): its baseline and transfer there are one run
    by = {(r["workflow"], r["T_K"], r["rho_g_cm3"]): r for r in table}
    base = by[("single_state_baseline", 300.0, 0.16)]["tae_trials_A"]
    assert by[("single_state_transfer", 300.0, 0.16)]["tae_trials_A"] == base
    # ... and elsewhere the transfer is the centre model's own run, not the baseline's
    assert (by[("single_state_transfer", 300.0, 0.30)]["tae_trials_A"]
            != by[("single_state_baseline", 300.0, 0.30)]["tae_trials_A"])  # fmt: skip
    # priors: methane COMs come no closer than ~0.3 nm
    for pr in res["priors"]["methane trial0"].values():
        assert 0.2 < pr["onset_nm"] < 0.4
    on_disk = json.loads((wd / "results.json").read_text())
    assert on_disk["tae_table"] == json.loads(json.dumps(table))
    for png in ("tae_grid.png", "rdf_extremes.png"):
        with open(wd / "plots" / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # finished: a rerun reads every stage back (no training, no MD)
    again = _run(wd)
    assert again["tae_table"] == table
    assert (
        "stage md_methane_trial1_multi_at_T300_rho0.16: done before" in (wd / "log.txt").read_text()
    )
    # a grid folder (data.directory) without a state point the config asks for
    with pytest.raises(ValueError, match=r"methane: no reference data at 700 K, 0.3 g/cm\^3") as e:
        _run(tmp_path / "m", f"--config.data.directory={wd / 'reference_grid'}",
             "--config.grid.methane.temperatures=(300.0, 700.0)")  # fmt: skip
    assert type(e.value).__name__ == "MissingStatePointError"


def test_bad_grid_input(tmp_path):
    with pytest.raises(reference.UnknownMoleculeError, match="unknown molecule 'ethane'"):
        _run(tmp_path / "a", "--config.molecules=('ethane',)")
    # the centre must be a point of the grid
    with pytest.raises(ValueError, match=r"centre 400 K, 0.16 g/cm\^3 is not a point"):
        _run(tmp_path / "b", "--config.grid.methane.centre=(400.0, 0.16)")
    # 32 methanes at 0.30 g/cm^3: a 1.42 nm box, less than twice 0.8 nm
    with pytest.raises(reference.BoxTooSmallError, match="methane at 300 K, 0.3 g/cm"):
        _run(tmp_path / "c", "--config.grid.methane.cutoff=0.8")
    with pytest.raises(SystemExit, match="trials"):
        _run(tmp_path / "d", "--config.trials=1")
