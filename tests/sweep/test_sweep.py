"""Vmapped sweeps: a member = the same config trained alone; 1 vs 4 devices; 2 processes."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from cgjax import sweep, train

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "sweep_worker.py")
sys.path.insert(0, HERE)
import sweep_worker  # noqa: E402

TIMEOUT_S = 300  # a hung subprocess (e.g. a collective waiting forever) fails the test


def flat(params):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])


@pytest.mark.slow
def test_member_equals_the_same_config_trained_alone():
    model, tr, va = sweep_worker.lj_problem()
    configs = sweep.expand(sweep_worker.base_config(), ["train.lr=[1e-2, 3e-3]", "seed=[1, 2]"])
    res = sweep.sweep_force_matching(model, tr, va, configs)
    assert len(res.members) == 4 and [m["seed"] for m in res.members] == [1, 2, 1, 2]
    for k in (0, 3):  # lr 1e-2 seed 1; lr 3e-3 seed 2
        cfg = configs[k]
        opt = optax.adam(
            optax.cosine_decay_schedule(cfg.train.lr, cfg.train.n_steps, alpha=0.1)
        )  # the optimizer of train.fit_force_matching
        single = train.force_matching(model, opt, batch_size=cfg.train.batch_size)
        key = jax.random.key(cfg.seed)
        state = single.init_fn(key, model.init_fn(key, tr["positions"][0]))
        state = train.fit(
            single, state, tr, va,
            train.Schedule(cfg.train.n_steps, eval_every=10, checkpoint_every=20, seed=cfg.seed),
            workdir=None, progress=False,
        )  # fmt: skip
        member = res.members[k]
        np.testing.assert_allclose(
            flat(member["params"]), flat(state.params), rtol=1e-9, atol=1e-12
        )
        err = train.evaluate(single, state.params, va)
        np.testing.assert_allclose(member["val_force_rmse"], err["rmse"], rtol=1e-9)
        assert member["diverged_at_step"] is None and len(member["train_loss"]) == 20
    # Members that share a seed start alike and differ by their lr only.
    assert res.members[0]["train_loss"][0] == res.members[2]["train_loss"][0]
    assert not np.allclose(flat(res.members[0]["params"]), flat(res.members[2]["params"]))


def test_a_group_rejects_untraceable_differences():
    model, tr, va = sweep_worker.lj_problem()
    configs = sweep.expand(sweep_worker.base_config(), ["train.n_steps=[10, 20]"])
    with pytest.raises(ValueError, match=r"differ in 'train\.n_steps'.*group_by_structure"):
        sweep.sweep_force_matching(model, tr, va, configs)


def test_csv_and_plot(tmp_path):
    rows = [
        {"index": i, "train.lr": lr, "model": m, "seed": s, "val_force_rmse": 1.0 + lr + s,
         "train_loss": [3.0]}
        for i, (m, lr, s) in enumerate(
            (m, lr, s) for m in ("a", "b") for lr in (1e-3, 1e-1) for s in (0, 1)
        )
    ]  # fmt: skip
    path = sweep.write_sweep_csv(rows, str(tmp_path / "sweep.csv"))
    lines = open(path).read().splitlines()
    assert lines[0] == "index,train.lr,model,seed,val_force_rmse" and len(lines) == 9
    png = sweep.plot_sweep(rows, str(tmp_path / "p" / "sweep.png"), x="train.lr")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="no 'val_loss'"):
        sweep.plot_sweep(rows, str(tmp_path / "x.png"), x="train.lr", y="val_loss")


def _worker(out, *args, env=None):
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # 1 device unless told
    env = dict(base, **(env or {}))
    cmd = [sys.executable, WORKER, str(out), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(procs):
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT_S)
            assert p.returncode == 0, out.decode()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _load(path):
    with open(path) as f:
        return json.load(f)


def _assert_same_members(a, b):
    assert [r["index"] for r in b["rows"]] == list(range(6))  # every member exactly once
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert (ra["train.lr"], ra["seed"]) == (rb["train.lr"], rb["seed"])
        np.testing.assert_allclose(ra["val_force_rmse"], rb["val_force_rmse"], rtol=1e-9)
        np.testing.assert_allclose(ra["train_loss_final"], rb["train_loss_final"], rtol=1e-9)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out.json"
    _finish([_worker(out)])
    return _load(out)


@pytest.mark.slow
def test_four_virtual_devices_give_the_one_device_results(one_device, tmp_path):
    out = tmp_path / "four.json"
    _finish([_worker(out, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})])
    four = _load(out)
    assert one_device["n_devices"] == 1 and four["n_local_devices"] == 4
    assert four["n_devices"] == 4 and four["n_padded"] == 2  # 6 members padded to 8
    assert four["sharding"] == "P('member',) over 4 devices"
    _assert_same_members(one_device, four)
    for ma, mb in zip(one_device["members"], four["members"], strict=True):
        np.testing.assert_allclose(ma["params_flat"], mb["params_flat"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ma["train_loss"], mb["train_loss"], rtol=1e-9)


@pytest.mark.slow
def test_two_processes_on_loopback_share_and_gather_the_members(one_device, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outs = [tmp_path / f"p{i}.json" for i in range(2)]
    wd = tmp_path / "workdir"
    _finish([
        _worker(outs[i], f"--pid={i}", "--nproc=2", f"--port={port}", f"--workdir={wd}")
        for i in range(2)
    ])  # fmt: skip
    results = [_load(o) for o in outs]
    for i, r in enumerate(results):
        assert (r["pid"], r["nproc"], r["n_global_devices"]) == (i, 2, 2)
        assert len(r["members"]) == 3  # its own shard: members[i::2]
        _assert_same_members(one_device, r)  # gathered on every process
    trained = sorted((m["lr"], m["seed"]) for r in results for m in r["members"])
    assert trained == sorted((r["train.lr"], r["seed"]) for r in one_device["rows"])
    lines = open(wd / "sweep.csv").read().splitlines()  # written once, by process 0
    assert lines[0].startswith("index,train.lr,seed,val_force_rmse") and len(lines) == 7
    assert os.path.getsize(wd / "sweep.png") > 0
