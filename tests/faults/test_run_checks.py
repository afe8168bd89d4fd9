"""``cgjax.run`` checks what it can before it writes anything, and says so in one
``error:`` line: the config file and preset, value ranges (the config file's
``CHECKS``), the workdir (writable, free space); atomic writes leave no temp file."""

import errno
import json
import os

import ml_collections
import pytest

from cgjax import config as cgconfig
from cgjax import run
from cgjax.workflow import Workdir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = """
import ml_collections
HELP = {"seed": "seed [-]", "train.n_steps": "updates [steps]", "train.lr": "rate [-]",
        "fraction": "a fraction [-]", "sizes": "sizes [frames]"}
CHECKS = {"train.n_steps": "> 0", "train.lr": "> 0", "fraction": "in [0, 1)",
          "sizes": "> 0", "gone": "> 0"}
def get_config(preset="quick"):
    if preset not in ("quick", "smoke"):
        raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick")
    return ml_collections.ConfigDict(dict(seed=0, fraction=0.5, sizes=[1, 10],
        train=dict(n_steps=3, lr=1e-2)))
"""
EXPERIMENT = """
import os, time
from cgjax.workflow import Workdir
def main(config, workdir):
    wd = Workdir(workdir)
    if os.environ.get("CGJAX_TEST_SLEEP"):
        open(os.path.join(workdir, "started"), "w").close()
        time.sleep(float(os.environ["CGJAX_TEST_SLEEP"]))
    wd.write_results({"n_steps": config.train.n_steps})
    return {"n_steps": config.train.n_steps}
def sweep_group(configs, workdir):
    return [{"n_steps": c.train.n_steps} for c in configs]
"""


@pytest.fixture
def tiny(tmp_path):
    """``(experiment, config file)``: a tiny experiment that writes results.json."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "configs").mkdir()
    exp = tmp_path / "experiments" / "tiny.py"
    exp.write_text(EXPERIMENT)
    (tmp_path / "configs" / "tiny.py").write_text(CONFIG)
    return str(exp), str(tmp_path / "configs" / "tiny.py")


def _fails(argv, match):
    with pytest.raises(SystemExit, match=match) as info:
        run.main(argv)
    message = str(info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def test_unknown_preset_and_missing_config_file_are_one_line_errors(tiny, tmp_path):
    exp, cfg = tiny
    wd = tmp_path / "w"
    m = _fails([exp, f"--config={cfg}:tiny", f"--workdir={wd}"], r"unknown preset 'tiny'")
    assert cfg in m
    _fails([exp, f"--config={tmp_path / 'nope.py'}:smoke", f"--workdir={wd}"],
           r"config file not found: .*nope.py")  # fmt: skip
    assert not wd.exists()


def test_values_out_of_range_fail_before_anything_is_written(tiny, tmp_path):
    exp, cfg = tiny
    wd = tmp_path / "w"
    m = _fails([exp, f"--config={cfg}:smoke", "--config.train.n_steps=-5", f"--workdir={wd}"],
               r"config key 'train.n_steps' must be > 0, got -5")  # fmt: skip
    assert "CHECKS of" in m
    _fails(
        [exp, "--config.fraction=1.0", "--config.train.lr=0.0", f"--workdir={wd}"],
        r"'train.lr' must be > 0, got 0.0; config key 'fraction' must be in \[0, 1\), got 1.0",
    )
    _fails([exp, "--config.sizes=[1, 0]", f"--workdir={wd}"],
           r"'sizes' \(entry 1 of \[1, 0\]\) must be > 0, got 0")  # fmt: skip
    _fails([exp, "--sweep", "train.n_steps=[3,0]", f"--workdir={wd}"],
           r"'train.n_steps' must be > 0, got 0 \(over the --sweep values\)")  # fmt: skip
    assert not wd.exists()
    # a run in an existing workdir: nothing in it changes
    assert run.main([exp, f"--workdir={wd}"]) == {"n_steps": 3}
    before = {p: (wd / p).read_bytes() for p in ("config.json", "results.json")}
    _fails([exp, "--config.train.n_steps=0", f"--workdir={wd}"], "'train.n_steps' must be > 0")
    assert {p: (wd / p).read_bytes() for p in before} == before
    assert not (wd / ".lock").exists()  # released after the run


def test_the_shipped_configs_check_their_values(tmp_path):
    """The issue's cases on the real experiments: each fails at once, naming the key."""
    wd = tmp_path / "w"
    for name, key in (
        ("water_data_efficiency", "train.n_steps=-5"),
        ("spce_dynamics", "fm.n_steps=0"),
    ):
        exp, cfg = (os.path.join(ROOT, d, f"{name}.py") for d in ("experiments", "configs"))
        _fails([exp, f"--config={cfg}:smoke", f"--config.{key}", f"--workdir={wd}"],
               f"config key '{key.split('=')[0]}' must be > 0")  # fmt: skip
    assert not wd.exists()


@pytest.mark.parametrize("name", ["alanine_cgschnet", "argon_dynamics", "deepcg_water",
                                  "methane_dynamics",
                                  "spce_dynamics", "transferability",
                                  "water_data_efficiency"])  # fmt: skip
def test_every_preset_passes_its_checks_and_every_check_is_a_documented_key(name):
    keys = set()
    for preset in ("smoke", "quick", "full"):
        f = cgconfig.load_config_file("x.py", os.path.join(ROOT, "configs", f"{name}.py:{preset}"))
        assert f.checks and cgconfig.check_config(f.config, f.checks) == []
        keys |= set(cgconfig.flatten(f.config))
    assert set(f.checks) <= set(f.descriptions) & keys


def test_check_config_rules():
    c = ml_collections.ConfigDict(dict(a=0.5, b=None, c="x", d=True, e=(0.1, float("nan"))))
    assert cgconfig.check_config(c, {"a": "in (0, 1]", "b": "> 0", "z": "> 0"}) == []
    assert cgconfig.check_config(c, {"a": "< 0.5"}) == ["config key 'a' must be < 0.5, got 0.5"]
    assert len(cgconfig.check_config(c, {"c": ">= 0", "d": ">= 0", "e": ">= 0"})) == 3
    with pytest.raises(ValueError, match=r"CHECKS\['a'\]: malformed range rule 'positive'"):
        cgconfig.check_config(c, {"a": "positive"})


def test_unusable_workdir_fails_at_once(tiny, tmp_path, monkeypatch):
    exp, cfg = tiny
    (tmp_path / "file").write_text("")
    _fails([exp, f"--workdir={tmp_path / 'file'}"], r"workdir .*file is a file, not a directory")
    _fails([exp, f"--workdir={tmp_path / 'file' / 'w'}"], r"cannot create workdir .*file is not")
    _fails([exp, "--workdir=/proc/cgjax_w"], r"/proc/cgjax_w cannot be created .*not writable")
    if os.geteuid() != 0:  # root writes anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        _fails([exp, f"--workdir={ro}"], r"workdir .*ro is not writable: Permission denied")
    monkeypatch.setenv("CGJAX_MIN_FREE_MB", "1e12")
    _fails(
        [exp, f"--workdir={tmp_path / 'w'}"],
        r"only \d+ MiB free on the filesystem of workdir .*; a run needs 1000000000000 MiB",
    )
    assert not (tmp_path / "w").exists()
    assert sorted(os.listdir(tmp_path)) == ["configs", "experiments", "file"] + (
        [] if os.geteuid() == 0 else ["ro"]
    )


def _failing_dump(data, f, **kw):
    f.write('{"half": ')
    f.flush()
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_leaves_no_temp_file_and_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    cgconfig.write_json(str(path), {"a": 1})
    monkeypatch.setattr(cgconfig.json, "dump", _failing_dump)
    with pytest.raises(OSError, match="No space left"):
        cgconfig.write_json(str(path), {"a": 2})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["results.json"]
    assert json.loads(path.read_text()) == {"a": 1}
    wd = Workdir(str(tmp_path / "w"), echo=False)
    wd.save_params("p", {"w": 1.0})

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("flax.serialization.msgpack_serialize", full)
    with pytest.raises(OSError, match="No space left"):
        wd.save_params("p", {"w": 2.0})
    assert os.listdir(tmp_path / "w" / "params") == ["p.msgpack"]
