"""Paper 001's capped-alanine study end to end with its smoke preset, through ``cgjax.run``."""

import json
import os

import numpy as np

from cgjax import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = os.path.join(ROOT, "experiments", "alanine_cgschnet.py")
CFG = os.path.join(ROOT, "configs", "alanine_cgschnet.py")


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_alanine_cgschnet_smoke(tmp_path):
    wd = tmp_path / "a"
    res = run.main([EXP, f"--config={CFG}:smoke", f"--workdir={wd}"])
    assert json.loads((wd / "results.json").read_text())["experiment"].startswith("alanine")
    for name in ("cgnet", "cgschnet"):
        t = res["training"][name]
        assert len(t["val_force_rmse_kcal_per_mol_per_A"]) == 2  # one per fold
        assert np.all(np.isfinite(t["val_force_rmse_kcal_per_mol_per_A"]))
        # every member's network moves the forces (a saturated member would read ~0)
        assert len(t["member_net_force_rms_kJ_per_mol_nm"]) == 2
        assert min(t["member_net_force_rms_kJ_per_mol_nm"]) > 1e-3 and t["inactive_members"] == []
    for name in ("priors", "cgnet", "cgschnet"):
        sim = res["simulation"][name]
        assert isinstance(sim["stable"], bool)
        if sim["stable"]:
            assert sim["n_samples"] == 4 * 4  # replicas x recorded frames
            assert 0 <= res["fes"][name]["kl"] and res["fes"][name]["equivalent_sigma_kl_A"] >= 0
    # the shipped set was sampled under a frozen phi bias: its distributions are reweighted
    rw = res["reference_reweighting"]
    assert rw["biased"] and 0 < rw["effective_sample_size"] < res["n_frames_aa"]
    assert 0.005 < res["reference_basins"]["alpha_L"] < 0.1  # weighted; 27 % of frames sampled
    nb = res["noise_baseline"]
    assert np.shape(nb["kl"]) == (2, 11) and nb["n_samples"] == 16
    for png in ("fes_2d.png", "fes_1d.png", "noise_baseline.png", "training.png"):
        assert _png(wd / "plots" / png)
    # resumable: every stage stored (a rerun reads them back; the rerun itself is left out to
    # keep this test within its time budget, test_smoke.py covers Workdir.stage's resume)
    for stage in ("priors", "md_priors", "md_cgnet", "md_cgschnet", "noise_baseline"):
        assert (wd / "stages" / f"{stage}.json").exists()
