"""The structure-methods comparison (issue 20) end to end with its smoke preset, through
``python -m cgjax.run``: every method of the registry on argon, its table, the plot, and
a rerun that reads every stage back."""

import json
import os

import numpy as np
import pytest

from cgjax import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXP = os.path.join(ROOT, "experiments", "structure_methods.py")
CFG = os.path.join(ROOT, "configs", "structure_methods.py")


@pytest.mark.slow
def test_structure_methods_smoke(tmp_path):
    wd = tmp_path / "s"
    res = run.main([EXP, f"--config={CFG}:smoke", f"--workdir={wd}"])
    rows = res["table"]
    assert [(r["system"], r["method"]) for r in rows] == [
        ("argon", "rem"), ("argon", "adjoint"), ("argon", "difftre"), ("argon", "ibi"),
        ("argon", "imc"),
    ]  # fmt: skip
    for r in rows:
        assert 0 < r["rdf_tae_A"] < 5, r
        assert r["simulated_ps"] > 0 and r["wall_s"] > 0
        assert r["updates"] == 2 or r["converged"]
        assert r["gradient_evaluations"] == (0 if r["method"] in ("ibi", "imc") else r["updates"])
        assert r["pressure_error_bar"] is not None and np.isfinite(r["pressure_error_bar"])
        if r["method"] not in ("ibi", "imc"):
            assert 0.25 < r["sigma_nm"] < 0.45 and 0.3 < r["epsilon_kJ_per_mol"] < 3
        curve = res["tae_curves"][f"argon_{r['method']}"]
        assert [e["update"] for e in curve][0] == 0 and len(curve) >= 2
    # the REM and DiffTRe samplings: 120 steps of 4 fs each; the adjoint: 20 steps per update
    assert rows[1]["simulated_ps"] == pytest.approx(2 * 20 * 0.004)
    assert rows[2]["simulated_ps"] == pytest.approx(0.48 * round(rows[2]["simulated_ps"] / 0.48))
    assert len(res["rdf"]["argon_rem"]) == len(res["rdf_r_nm"]["argon"]) == 100
    with open(wd / "plots" / "methods.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((wd / "results.json").read_text())
    assert on_disk["table"] == json.loads(json.dumps(rows))
    again = run.main([EXP, f"--config={CFG}:smoke", f"--workdir={wd}"])
    assert again["table"] == on_disk["table"]
    assert (wd / "log.txt").read_text().count(": done before, read from") == 5
    assert np.isfinite(again["table"][0]["rdf_tae_A"])
