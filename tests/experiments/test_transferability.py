"""Paper 003's transferability experiment with its smoke preset, through ``python -m cgjax.run``,
and its errors on bad state points."""

import json
import os
import time

import numpy as np
import pytest

from cgjax import datasets, reference, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = os.path.join(ROOT, "experiments", "transferability.py")
CFG = os.path.join(ROOT, "configs", "transferability.py")


def _run(workdir, *extra):
    return run.main([EXP, f"--config={CFG}:smoke", f"--workdir={workdir}", *extra])


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_transferability_smoke(tmp_path):
    wd = tmp_path / "t"
    res = _run(wd)
    rows = res["tae_table"]
    # 2 models x (a baseline at 300 K and at 400 K, and the 300 K model at 400 K), and the
    # multi-state and state-aware models trained at 400 K, simulated at the held-out 300 K
    assert sorted((r["model"], str(r["trained_K"]), r["simulated_K"]) for r in rows) == [
        ("hipnn", "300.0", 300.0), ("hipnn", "300.0", 400.0), ("hipnn", "400.0", 400.0),
        ("hipnn_multi", "400", 300.0), ("hipnn_state", "400", 300.0),
        ("mscg", "300.0", 300.0), ("mscg", "300.0", 400.0), ("mscg", "400.0", 400.0),
    ]  # fmt: skip
    for r in rows:
        if r["model"].startswith("hipnn_"):
            assert r["kind"] == "held_out"
            continue
        assert r["kind"] == ("baseline" if r["trained_K"] == r["simulated_K"] else "transfer")
        assert isinstance(r["stable"], bool)
        # barely trained, yet simulated: a finite TAE between AA and CG RDFs
        assert r["rdf_tae_A"] is not None and 0 < r["rdf_tae_A"] < 20
    for T in ("300", "400"):
        prior = res["priors"][T]
        # methanol COMs come no closer than ~0.25 nm; the prior sits just below
        assert 0.2 < prior["onset_nm"] < 0.35 and prior["e0_kJ_per_mol"] > 0
        assert np.isfinite(res["training"]["mscg"][T]["val_force_rmse"])
        assert len(res["aa_rdf"][T]) == len(res["rdf_r_nm"]) == 120
    assert set(res["verdict"]) >= {"single_state_holds", "transfer_ratio_below_300K"}
    held = res["state_study"]["per_temperature"]["300"]
    assert held["kind"] == "held_out" and isinstance(held["state_aware_no_worse"], bool)
    assert held["state_aware_no_worse"] == (held["hipnn_state_tae_A"] <= held["hipnn_multi_tae_A"])
    assert res["state_study"]["held_out_holds"] == held["state_aware_no_worse"]
    # the pooled models' prior is fitted on their own (pooled) training frames
    assert 0.2 < res["priors"]["pooled 400"]["onset_nm"] < 0.35
    assert res["training"]["hipnn_state"]["400"]["train_temperatures_K"] == [400.0]
    on_disk = json.loads((wd / "results.json").read_text())
    assert on_disk["tae_table"] == json.loads(json.dumps(rows))
    for png in ("rdf_grid.png", "tae_vs_temperature.png", "tae_grid.png", "training.png"):
        assert _png(wd / "plots" / png)
    # finished: a rerun reads every stage back
    t0 = time.perf_counter()
    again = _run(wd)
    assert again["tae_table"] == res["tae_table"]
    assert "stage md_mscg_T300_at_T400: done before" in (wd / "log.txt").read_text()
    assert time.perf_counter() - t0 < 60


def test_state_point_too_small_for_the_cutoff(tmp_path):
    # 256 methanols at 0.77 g/cm^3: a 2.61 nm box, less than twice 1.4 nm
    with pytest.raises(reference.BoxTooSmallError, match="300 K, 0.77 g/cm"):
        _run(tmp_path / "b", "--config.cutoff=1.4")
    with pytest.raises(ValueError, match="transfer_from = 250 K is not one of"):
        _run(tmp_path / "c", "--config.transfer_from=250.0")
    with pytest.raises(ValueError, match="no reference data at 300 K, 0.5 g/cm"):
        _run(tmp_path / "d", "--config.density=0.5")
    with pytest.raises(ValueError, match=r"states: temperatures \[250.0\] K are not among"):
        _run(tmp_path / "e", "--config.states.simulate_temperatures=(250.0,)")


def test_shipped_grid_is_the_quick_preset():
    grid = datasets.load_grid("methanol_256_quick")
    assert sorted(grid) == [(200.0, 0.77), (300.0, 0.77), (400.0, 0.77)]
    for (T, _), frames in grid.items():
        assert frames.positions.shape == frames.forces.shape == (250, 256, 3)
        assert frames.temperature == T
        assert abs(frames.metadata["aa_temperature_mean"] / T - 1) < 0.02
        assert frames.provenance["config"]["system"] == "methanol"
