"""``benchmarks/vs_chemtrain.py`` without chemtrain: its argument handling, the parsing of
a worker's result (or failure), and the tables and ratios built from a canned run.

The benchmark itself installs another stack and runs for minutes; it is never run here.
"""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.path.join(ROOT, "benchmarks", "vs_chemtrain.py")


@pytest.fixture(scope="module")
def vs():
    spec = importlib.util.spec_from_file_location("vs_chemtrain", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PY = sys.executable  # an executable file standing in for the chemtrain venv's Python


def _exits(vs, argv, capsys, match):
    with pytest.raises(SystemExit) as e:
        vs.parse_args(argv)
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_arguments(vs, capsys):
    a = vs.parse_args(["--chemtrain-python", PY])
    assert (a.fm_models, a.fm_updates, a.batch_size, a.skip) == (["schnet", "nequip"], 20, 4, set())
    q = vs.parse_args(["--chemtrain-python", PY, "--quick", "--skip", "md"])
    assert (q.fm_updates, q.train_frames, q.val_frames, q.skip) == (4, 16, 8, {"md"})
    assert vs.parse_args(["--report", "x.json"]).report == "x.json"
    _exits(vs, [], capsys, "--chemtrain-python PATH or --make-venv DIR")
    _exits(vs, ["--chemtrain-python", PY, "--make-venv", "d"], capsys, "not allowed with")
    _exits(vs, ["--chemtrain-python", "/nonexistent/python"], capsys, "not an executable")
    _exits(vs, ["--chemtrain-python", PY, "--fm-models", "schnet,dimenet"], capsys,
           "unknown ['dimenet']")  # fmt: skip
    _exits(vs, ["--chemtrain-python", PY, "--skip", "fm,rdf"], capsys, "unknown parts ['rdf']")
    _exits(vs, ["--chemtrain-python", PY, "--val-frames", "10"], capsys, "multiple of --batch")
    _exits(vs, ["--chemtrain-python", PY, "--fm-updates", "0"], capsys, "--fm-updates must be")


def test_plan_alternates_and_skips(vs):
    a = vs.parse_args(["--chemtrain-python", PY, "--fm-models", "gnn"])
    assert vs.plan(a) == [
        ("chemtrain", "fm"), ("cgjax", "fm:gnn"),
        ("chemtrain", "difftre"), ("cgjax", "difftre"), ("cgjax", "adjoint"), ("cgjax", "eval"),
        ("chemtrain", "md"), ("cgjax", "md:gnn"),
    ]  # fmt: skip
    a = vs.parse_args(["--chemtrain-python", PY, "--skip", "fm"])
    assert [t for _, t in vs.plan(a)] == ["difftre", "difftre", "adjoint", "eval"]  # md needs fm


def test_parse_result(vs, tmp_path):
    good = tmp_path / "chemtrain_fm.json"
    good.write_text(json.dumps({"frames_per_s": 0.5}))
    r = vs.parse_result(good, 0, "", "chemtrain", "fm", wall=12.0)
    assert r == {"frames_per_s": 0.5, "side": "chemtrain", "task": "fm", "process_wall_s": 12.0}
    err = "AttributeError: module 'jax.random' has no attribute 'KeyArray'"
    stderr = f"Traceback\n  File x\n\n{err}\n"
    r = vs.parse_result(tmp_path / "missing.json", 1, stderr, "chemtrain", "md")
    assert r["error"].startswith("exit status 1: ")
    assert r["error"].endswith(err)
    r = vs.parse_result(tmp_path / "missing.json", 0, "", "cgjax", "x")
    assert "no result file" in r["error"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "bad.json: bad JSON" in vs.parse_result(bad, 0, "", "cgjax", "eval")["error"]


CANNED = {
    "meta": {"command": "python benchmarks/vs_chemtrain.py --chemtrain-python P",
             "loadavg_start": [3.0, 2.5, 2.0], "loadavg_end": [3.5, 2.9, 2.1], "cpu_count": 2,
             "cgjax_versions": {"jax": "0.10.1"}, "chemtrain_versions": {"chemtrain": "0.2.0"}},
    "tasks": {
        "chemtrain_fm": {"side": "chemtrain", "task": "fm", "model": "DimeNet++", "n_params": 18622,
                         "s_per_update": 8.0, "frames_per_s": 0.5, "peak_rss_gb": 2.9,
                         "val_force_rmse": 230.0, "first_update_s": 60.0},
        "cgjax_fm_schnet": {"side": "cgjax", "task": "fm:schnet", "model": "cgjax SchNet",
                            "n_params": 16865, "s_per_update": 0.5, "frames_per_s": 8.0,
                            "peak_rss_gb": 1.0, "val_force_rmse": 240.0, "first_update_s": 30.0},
        "cgjax_fm_nequip": {"side": "cgjax", "task": "fm:nequip", "error": "timed out after 5 s"},
        "chemtrain_difftre": {"side": "chemtrain", "task": "difftre", "method": "chemtrain DiffTRe",
                              "updates": 10, "wall_s": 100.0, "setup_s": 20.0, "s_per_update": 8.0,
                              "ps_per_update": 3.5, "simulated_ps": 35.0, "peak_rss_gb": 1.5,
                              "sigma_nm": 0.31, "epsilon_kJ_per_mol": 0.7},
        "cgjax_difftre": {"side": "cgjax", "task": "difftre", "method": "cgjax DiffTRe",
                          "updates": 40, "wall_s": 100.0, "setup_s": 5.0, "s_per_update": 2.0,
                          "ps_per_update": 1.75, "simulated_ps": 70.0, "peak_rss_gb": 0.9,
                          "sigma_nm": 0.315, "epsilon_kJ_per_mol": 0.65},
        "cgjax_eval": {"side": "cgjax", "task": "eval", "rdf_tae_A": {
            "start": 0.9, "chemtrain_difftre": 0.3, "cgjax_difftre": 0.2}},
        "chemtrain_md": {"side": "chemtrain", "task": "md", "model": "DimeNet++",
                         "steps_per_s": 20.0, "peak_rss_gb": 2.0, "finite": True,
                         "temperature_K": 301.0},
        "cgjax_md_schnet": {"side": "cgjax", "task": "md:schnet", "model": "cgjax SchNet",
                            "steps_per_s": 100.0, "peak_rss_gb": 1.0, "finite": True},
    },
}  # fmt: skip


def test_summary_ratios_and_tables(vs):
    s = vs.summarize(CANNED)
    fm = {r["model"]: r for r in s["fm"]}
    assert fm["DimeNet++"]["speed_ratio"] == 1.0
    assert fm["cgjax SchNet"]["speed_ratio"] == 16.0  # 8 frames/s over 0.5
    assert fm["cgjax_fm_nequip"]["error"] == "timed out after 5 s"
    st = {r["method"]: r for r in s["structure"]}
    assert st["cgjax DiffTRe"]["speed_ratio"] == 4.0  # 1/2 updates/s over 1/8
    assert (st["cgjax DiffTRe"]["rdf_tae_A"], st["chemtrain DiffTRe"]["rdf_tae_A"]) == (0.2, 0.3)
    assert s["start_rdf_tae_A"] == 0.9
    md = {r["model"]: r for r in s["md"]}
    assert md["cgjax SchNet"]["speed_ratio"] == 5.0
    text = vs.report(CANNED)
    assert "command: python benchmarks/vs_chemtrain.py --chemtrain-python P" in text
    assert "load average before/after (1, 5, 15 min): [3.0, 2.5, 2.0] / [3.5, 2.9, 2.1]" in text
    assert "| cgjax | cgjax SchNet | 16865 | 0.5 | 8 | 16 | 30 | 1 | 240 |" in text
    assert "| cgjax | cgjax_fm_nequip | FAILED: timed out after 5 s |" in text
    assert "| chemtrain | chemtrain DiffTRe | 10 | 100 | 20 | 8 | 1 | 3.5 | 35 |" in text
