"""cgjax.workflow (resumable stages, JSON output) and the model zoo by name (potentials.build)."""

import json
import math

import numpy as np
import pytest

from cgjax import potentials, workflow


def test_build_potential_uses_paper_defaults_and_overrides():
    pot = potentials.build("deeppot", {"fitting_features": [16, 16]}, cutoff=0.6)
    assert isinstance(pot, potentials.DeepPotSE)
    assert pot.cutoff == 0.6 and pot.fitting_features == (16, 16)
    assert pot.embedding_features == tuple(potentials.DeepPotSE.default_config().embedding_features)


def test_build_potential_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown model 'deepmd'.*'deeppot'"):
        potentials.build("deepmd")
    with pytest.raises(ValueError, match=r"no field\(s\) \['widht'\]"):
        potentials.build("allegro", {"widht": 3})


def test_stage_runs_once_and_is_read_back(tmp_path):
    wd = workflow.Workdir(str(tmp_path), echo=False)
    calls = []

    def stage():
        calls.append(1)
        return {"x": np.float32(1.5), "a": np.arange(3), "nan": math.nan}

    first = wd.stage("s", stage)
    second = workflow.Workdir(str(tmp_path), echo=False).stage("s", stage)
    assert len(calls) == 1
    assert first == second
    assert second["x"] == 1.5 and second["a"] == [0, 1, 2] and second["nan"] is None
    assert "stage s: done before" in (tmp_path / "log.txt").read_text()
    # Results are strict JSON (NaN -> null).
    path = wd.write_results({"v": float("inf")})
    assert json.loads(open(path).read()) == {"v": None}


def test_failed_stage_leaves_nothing(tmp_path):
    wd = workflow.Workdir(str(tmp_path), echo=False)
    with pytest.raises(RuntimeError):
        wd.stage("boom", lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert not (tmp_path / "stages" / "boom.json").exists()


def test_format_table():
    text = workflow.format_table([{"a": 1.23456, "b": None}], ["a", "b"])
    assert text.splitlines()[2].split() == ["1.23", "-"]


def test_params_and_json_round_trip_through_the_workdir(tmp_path):
    wd = workflow.Workdir(str(tmp_path), echo=False)
    params = {"gnn": {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3)},
              "lj": {"sigma": np.float32(0.3166)}}  # fmt: skip
    rel = wd.save_params("fm", params)
    assert rel == "params/fm.msgpack" and not (tmp_path / "params" / "fm.msgpack.tmp").exists()
    template = {"gnn": {"w": np.zeros((2, 3), np.float32)}, "lj": {"sigma": np.float32(0)}}
    back = wd.load_params(rel, template)
    np.testing.assert_array_equal(back["gnn"]["w"], params["gnn"]["w"])
    assert float(back["lj"]["sigma"]) == pytest.approx(0.3166)
    with pytest.raises(FileNotFoundError, match="params/rdf.msgpack are missing"):
        wd.load_params("params/rdf.msgpack", template)
    assert wd.read_json("stages/cache.json") == {}  # not there yet: an empty cache
    wd.write_json("stages/cache.json", {"A=0.1": {"D": np.float64(0.2)}})
    assert wd.read_json("stages/cache.json") == {"A=0.1": {"D": 0.2}}
    raw = wd.load_params(rel)  # no template: the nested dicts as saved
    np.testing.assert_array_equal(raw["gnn"]["w"], params["gnn"]["w"])


def test_files_cut_short_by_a_kill_are_found_and_redone(tmp_path):
    """What a killed run can leave: a stage JSON cut short (written without the atomic
    writer), temporary files of unfinished writes, a results.json cut short."""
    wd = workflow.Workdir(str(tmp_path), echo=False)
    wd.stage("a", lambda: {"x": 1})
    wd.stage("b", lambda: {"x": 2})
    wd.write_results({"a": 1})
    (tmp_path / "stages" / "b.json").write_text('{"x": ')
    (tmp_path / "stages" / "c.json.1234.tmp").write_text("{")
    (tmp_path / "results.json").write_text('{"a"')
    again = workflow.Workdir(str(tmp_path), echo=False)
    log = (tmp_path / "log.txt").read_text()
    assert "removed 1 temporary file(s) of an interrupted run: stages/c.json.1234.tmp" in log
    assert "results.json is unreadable (JSONDecodeError" in log
    assert not (tmp_path / "stages" / "c.json.1234.tmp").exists()
    calls = []
    assert again.stage("a", lambda: calls.append("a") or {"x": 1})["x"] == 1
    assert again.stage("b", lambda: calls.append("b") or {"x": 3})["x"] == 3
    assert calls == ["b"]  # only the damaged stage ran again
    log = (tmp_path / "log.txt").read_text()
    assert "stage b: stages/b.json is unreadable (JSONDecodeError" in log
    assert json.loads((tmp_path / "stages" / "b.json").read_text())["x"] == 3
