"""The experiments end to end with their smoke presets, through ``python -m cgjax.run``,
and the runner's errors. A rerun in the same workdir resumes from the finished stages."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cgjax import run
from cgjax.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: config name -> (experiment file, config file): argon and methane are configs of the
#: SPC/E experiment.
EXP = {
    name: (
        os.path.join(ROOT, "experiments", f"{experiment}.py"),
        os.path.join(ROOT, "configs", f"{name}.py"),
    )
    for name, experiment in (
        ("water_data_efficiency", "water_data_efficiency"), ("deepcg_water", "deepcg_water"),
        ("spce_dynamics", "spce_dynamics"), ("argon_dynamics", "spce_dynamics"),
        ("methane_dynamics", "spce_dynamics"), ("structure_methods", "structure_methods"),
    )
}  # fmt: skip


def _run(name, workdir, *extra):
    exp, cfg = EXP[name]
    return run.main([exp, f"--config={cfg}:smoke", f"--workdir={workdir}", *extra])


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_water_data_efficiency_smoke_killed_and_resumed(tmp_path):
    """SIGKILL the runner once its first model finished; the same command resumes there and
    completes the study (table, noise floor, plots); a third run reads everything back."""
    exp, cfg = EXP["water_data_efficiency"]
    wd = tmp_path / "w"
    cmd = [sys.executable, "-m", "cgjax.run", exp, f"--config={cfg}:smoke", f"--workdir={wd}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = wd / "stages" / "deeppot_1.json"
    t0 = time.time()
    while not first.exists() and proc.poll() is None and time.time() - t0 < 600:
        time.sleep(0.2)
    assert first.exists(), "the first model never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (wd / "results.json").exists()
    kept = first.read_text()

    res = _run("water_data_efficiency", wd)
    assert first.read_text() == kept  # not redone
    assert "stage deeppot_1: done before" in (wd / "log.txt").read_text()
    on_disk = json.loads((wd / "results.json").read_text())
    assert on_disk["table"] == json.loads(json.dumps(res["table"]))
    rows = res["table"]
    assert [(r["model"], r["n_train_frames"]) for r in rows] == [("deeppot", 1), ("allegro", 1)]
    for r in rows:
        # Barely trained (3 updates): far above the noise floor, yet finite and simulated.
        assert 3.0 < r["val_force_rmse_kcal_per_mol_per_A"] < 20.0
        assert np.isfinite(r["rdf_tae_A"]) and r["rdf_tae_A"] > 0
        assert isinstance(r["stable"], bool)
    floor = res["noise_floor"]["rows"]
    assert floor[0]["model"] == "spline"
    # The closed-form pairwise MS-CG fit is already near the paper's 3.5-3.6 band.
    assert 3.0 < floor[0]["val_force_rmse_kcal_per_mol_per_A"] < 5.0
    for png in ("rdf_adf_deeppot.png", "rdf_adf_allegro.png", "force_rmse.png"):
        assert _png(wd / "plots" / png)
    assert (wd / "config.json").exists()
    # Once finished, a rerun reads every stage back: nothing retrained or resimulated.
    t0 = time.perf_counter()
    again = _run("water_data_efficiency", wd)
    assert again["table"] == res["table"]
    assert time.perf_counter() - t0 < 60


@pytest.mark.slow
def test_deepcg_water_smoke(tmp_path):
    wd = tmp_path / "d"
    res = _run("deepcg_water", wd)
    dev = res["model_deviation"]
    assert dev["n_members"] == 2 and dev["n_instances"] == 3 * 512
    assert dev["mean_kJ_per_mol_per_nm"] > 0  # members differ by their seed
    assert len(res["training"]["val_force_rmse"]) == 2
    assert res["md_small"]["n_beads"] == 512
    assert res["md_large"]["n_beads"] == 8 * 512
    for key in ("md_small", "md_large"):
        assert np.isfinite(res[key]["rdf_tae_A"])
    for png in ("structure.png", "model_deviation.png", "training.png"):
        assert _png(wd / "plots" / png)


@pytest.mark.slow
def test_sweep_through_the_runner(tmp_path):
    """``--sweep``: 2 learning rates x 2 seeds, one vmapped group, gathered into sweep.csv."""
    wd = tmp_path / "s"
    out = _run(
        "water_data_efficiency", wd, "--sweep", "train.lr=[1e-2,3e-2]", "--sweep=seed=range(2)"
    )
    rows = out["sweep"]
    assert [(r["train.lr"], r["seed"]) for r in rows] == [
        (1e-2, 0), (1e-2, 1), (3e-2, 0), (3e-2, 1)
    ]  # fmt: skip
    assert all(3.0 < r["val_force_rmse_kcal_per_mol_per_A"] < 20.0 for r in rows)
    assert len({r["val_force_rmse"] for r in rows}) == 4  # seeds and rates differ
    assert len((wd / "sweep.csv").read_text().strip().splitlines()) == 5
    assert _png(wd / "sweep.png")
    assert json.loads((wd / "config.json").read_text())["sweep"] == [
        "train.lr=[1e-2,3e-2]", "seed=range(2)"
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="unknown config key 'train.lrr'"):
        _run("water_data_efficiency", tmp_path / "t", "--sweep", "train.lrr=[1e-2]")


def test_runner_errors(tmp_path):
    exp, cfg = EXP["water_data_efficiency"]
    with pytest.raises(SystemExit, match="experiment file not found"):
        run.main([str(tmp_path / "nope.py")])
    with pytest.raises(SystemExit, match=r"unknown config key 'train.n_step'.*train.n_steps"):
        run.main([exp, f"--config={cfg}:smoke", "--config.train.n_step=3"])
    with pytest.raises(SystemExit, match="'train.n_steps' is int"):
        run.main([exp, f"--config={cfg}:smoke", "--config.train.n_steps=fast"])
    with pytest.raises(SystemExit, match="error: .*preset 'tiny': unknown preset 'tiny'"):
        run.main([exp, f"--config={cfg}:tiny"])
    # A workdir holding another config is refused, and its config.json is kept.
    wd = tmp_path / "w"
    wd.mkdir()
    (wd / "config.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(SystemExit, match="another config"):
        run.main([exp, f"--config={cfg}:smoke", f"--workdir={wd}"])
    with pytest.raises(SystemExit, match="another config"):  # the space-separated form
        run.main([exp, "--config", f"{cfg}:smoke", "--workdir", str(wd)])
    assert json.loads((wd / "config.json").read_text()) == {"seed": 1}
    with pytest.raises(SystemExit, match="--workdir needs a value"):
        run.main([exp, "--workdir"])


def test_runner_help_lists_keys(capsys):
    exp, cfg = EXP["deepcg_water"]
    run.main([exp, f"--config={cfg}:smoke", "--help"])
    out = capsys.readouterr().out
    assert "--config.train.n_steps=3" in out and "--config.n_members=2" in out
    assert "--config.md.dt=0.002 MD time step [ps]" in " ".join(out.split())


@pytest.mark.parametrize("name", sorted(EXP))
def test_help_gives_every_key_a_meaning_and_unit(name, capsys):
    """``--help`` of every experiment and preset (and the default config): each listed key
    has a one-line meaning ending in its unit, and ``HELP`` names no key no preset has."""
    exp, cfg = EXP[name]
    keys = set()
    for spec in ([None] if name == os.path.basename(exp)[:-3] else []) + [
        f"{cfg}:{p}" for p in ("smoke", "quick", "full")
    ]:
        run.main([exp, "--help"] + ([] if spec is None else [f"--config={spec}"]))
        lines = capsys.readouterr().out.splitlines()[1:]
        assert lines
        for line in lines:
            key, _, meaning = line.strip().partition(" ")
            assert key.startswith("--config."), line
            assert re.fullmatch(r"\S.* \[[^\[\]]+\]", meaning.strip()), line
            keys.add(key[len("--config.") :].split("=", 1)[0])
    assert set(load_module(cfg).HELP) <= keys  # no description of a key that does not exist


def test_help_fails_on_an_undescribed_key(tmp_path, capsys):
    exp, _ = EXP["deepcg_water"]
    cfg = tmp_path / "c.py"
    cfg.write_text(
        "import ml_collections\n"
        "HELP = {'dt': 'time step [ps]', 'n': 'no unit'}\n"
        "def get_config():\n"
        "    return ml_collections.ConfigDict(dict(dt=0.002, n=3, m=1))\n"
    )
    with pytest.raises(SystemExit, match=r"'missing': \['m'\], 'malformed': \['n'\]"):
        run.main([exp, f"--config={cfg}", "--help"])
    assert "--config.dt=0.002  time step [ps]" in capsys.readouterr().out


def test_default_config_is_the_experiments_config_file(tmp_path):
    (tmp_path / "experiments").mkdir()
    exp = tmp_path / "experiments" / "x.py"
    exp.write_text("def main(config, workdir):\n    return {'seed': config.seed}\n")
    with pytest.raises(SystemExit, match=r"no base config .*configs/x.py"):
        run.main([str(exp), f"--workdir={tmp_path / 'w'}"])
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "x.py").write_text(
        "import ml_collections\n"
        "def get_config(preset='quick'):\n"
        "    return ml_collections.ConfigDict(dict(seed=1 if preset == 'quick' else 2))\n"
    )
    assert run.main([str(exp), f"--workdir={tmp_path / 'w'}"]) == {"seed": 1}


def _check_dynamics(res, wd, n_beads, top=0.5):
    """What every paper-004 experiment writes, and that it reads back on a rerun."""
    for key in ("rdf_tae_A", "D_CG_cm2_per_s", "D_AA_cm2_per_s", "D_ratio", "A_kJmol_nm2"):
        assert np.isfinite(res[key]), key
    assert res["omega_per_nm"] == pytest.approx(1000.0)
    assert "A_eV_A2" not in res and "omega_per_A" not in res  # one unit per quantity
    assert res["rdf_range_A"] == [0.0, 10.0] or tuple(res["rdf_range_A"]) == (0.0, 10.0)
    lj = res["lj"]
    assert lj["sigma_nm"] > 0 and lj["epsilon_kJ_per_mol"] > 0
    bis = res["bisection"]
    assert [b["x"] for b in bis[:2]] == [0.0, top] and len(bis) == 3
    # Illinois on ln D with the target at the ends' geometric mean: the midpoint first
    assert res["search_method"] == "illinois"
    assert bis[2]["x"] == pytest.approx(top / 2, rel=1e-9) and bis[2]["lo"] < bis[2]["hi"]
    # one validation run, and a second when the first missed the target by > 5 %
    runs = res["validation_runs"]
    assert 1 <= len(runs) <= 2 and runs[-1]["A_kJmol_nm2"] == pytest.approx(res["A_kJmol_nm2"])
    miss = runs[0]["D_cm2_per_s"] / res["D_target_cm2_per_s"] - 1
    assert (len(runs) == 2) == (abs(miss) > 0.05), (miss, runs)
    for png in ("rdf.png", "msd.png", "bisection.png", "training.png"):
        assert _png(wd / "plots" / png), png
    with open(wd / "results.json") as f:
        assert json.load(f)["D_ratio"] == pytest.approx(res["D_ratio"])
    assert set(res["wall_s"]) >= {"reference", "rem", "force_matching", "rdf_training",
                                  "bisection", "validation"}  # fmt: skip


@pytest.mark.slow
def test_spce_dynamics_smoke_and_resume(tmp_path):
    wd = tmp_path / "spce"
    res = _run("spce_dynamics", wd)
    _check_dynamics(res, wd, 512)
    assert res["bisection"][0]["D"] > res["bisection"][1]["D"]  # the barriers slow diffusion
    assert len(res["omega_scan"]) == 2 and _png(wd / "plots" / "omega_scan.png")
    assert len(res["rdf_training_loss"]) == 1 and np.isfinite(res["rdf_training_loss"][0])
    # A bisection killed after its evaluations were saved resumes without re-simulating
    # them; the stages before it are read back.
    os.remove(wd / "stages" / "bisection.json")
    os.remove(wd / "stages" / "validation.json")
    with open(wd / "log.txt") as f:
        n_log = len(f.readlines())
    again = _run("spce_dynamics", wd)
    with open(wd / "log.txt") as f:
        new = f.readlines()[n_log:]
    assert any("rdf_training: done before" in line for line in new)
    # both ends, the midpoint, and the validation run(s) at the tuned A read back
    assert sum("(cached)" in line for line in new) == 3 + len(res["validation_runs"])
    assert again["A_kJmol_nm2"] == pytest.approx(res["A_kJmol_nm2"])


@pytest.mark.slow
@pytest.mark.parametrize("name,n_beads", [("argon_dynamics", 864), ("methane_dynamics", 512)])
def test_argon_and_methane_dynamics_smoke(tmp_path, name, n_beads):
    wd = tmp_path / name
    res = _run(name, wd)
    _check_dynamics(res, wd, n_beads, top=0.1)
