"""The training loop: batch order, resume after a kill (in process and SIGKILL), early stopping."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import optax
import pytest

from cgjax import train

L, CUTOFF = 1.2, 0.6  # nm: 27 particles on a jittered 3x3x3 lattice

SETUP = """
import jax, jax.numpy as jnp, numpy as np, optax
jax.config.update("jax_enable_x64", True)
from cgjax import potentials, train

def setup(lr_fn=optax.adam, lr=1e-3):
    g = (np.arange(3) + 0.5) * 1.2 / 3
    lattice = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    R = lattice[None] + np.random.default_rng(0).normal(0.0, 0.03, (12, 27, 3))
    def model(s, e):
        pot = potentials.LennardJones(sigma=s, epsilon=e, cutoff=0.6, param_dtype=jnp.float64)
        return potentials.energy_model(pot, species=np.zeros(27, np.int32), box=1.2)
    ref = model(0.34, 1.0)
    F = np.asarray(jax.vmap(ref.force_fn(ref.init_fn(jax.random.key(0), R[0])))(R))
    m = model(0.32, 0.8)
    trainer = train.force_matching(m, lr_fn(lr), batch_size=2)
    state = trainer.init_fn(jax.random.key(3), m.init_fn(jax.random.key(0), R[0]))
    tr = {"positions": R[:8], "forces": F[:8]}
    va = {"positions": R[8:], "forces": F[8:]}
    return trainer, state, tr, va
"""
namespace: dict = {}
exec(SETUP, namespace)  # the same setup runs in the killed subprocess
setup = namespace["setup"]

SCHEDULE = train.Schedule(n_steps=12, eval_every=2, checkpoint_every=4, seed=5)
KW = dict(progress=False)


@pytest.fixture(scope="module")
def problem():
    return setup()


@pytest.fixture(scope="module")
def uninterrupted(problem, tmp_path_factory):
    trainer, state, tr, va = problem
    workdir = tmp_path_factory.mktemp("straight")
    final = train.fit(trainer, state, tr, va, SCHEDULE, workdir=str(workdir), **KW)
    return final, workdir


def assert_same_state(a, b):
    # Bitwise equal on CPU; the tolerance leaves room for GPU scatter-add order.
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-12)


def read_metrics(workdir):
    return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_minibatch_order_depends_on_seed_and_step_only():
    idx = [train.minibatch_indices(7, s, 10, 3) for s in range(6)]
    assert all(len(i) == 3 for i in idx)
    # Three batches per epoch, drawn without replacement from one permutation.
    for epoch in range(2):
        seen = np.concatenate(idx[3 * epoch : 3 * epoch + 3])
        assert len(set(seen.tolist())) == 9
    np.testing.assert_array_equal(idx[4], train.minibatch_indices(7, 4, 10, 3))
    assert not np.array_equal(
        np.concatenate(idx[:3]),
        np.concatenate([train.minibatch_indices(8, s, 10, 3) for s in range(3)]),
    )


class Killed(Exception):
    pass


def test_resume_in_process_matches_uninterrupted(problem, uninterrupted, tmp_path):
    trainer, state, tr, va = problem
    final, straight_dir = uninterrupted

    def kill_at_10(record):
        if record["step"] == 10:
            raise Killed  # after the step-8 checkpoint, before the step-12 one

    with pytest.raises(Killed):
        train.fit(trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path), log=kill_at_10, **KW)
    assert train.restore_latest(str(tmp_path), state).step == 8
    seen = []
    resumed = train.fit(
        trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path), log=seen.append, **KW
    )
    assert [r["step"] for r in seen] == [10, 12]  # it went on from step 8
    assert int(resumed.step) == 12
    assert_same_state(resumed, final)
    assert not np.allclose(resumed.params["sigma"], state.params["sigma"])  # it did train
    # The log of the cut-off run was trimmed to the checkpoint, then continued.
    a, b = read_metrics(straight_dir), read_metrics(tmp_path)
    assert [r["step"] for r in b] == [2, 4, 6, 8, 10, 12]
    for ra, rb in zip(a, b, strict=True):
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], rel=1e-12)
    # Rerunning a finished run restores and returns at once.
    again = train.fit(trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path), **KW)
    assert_same_state(again, final)


def test_resume_after_sigkill(problem, uninterrupted, tmp_path):
    """A real process, killed with SIGKILL after its first checkpoint, then resumed here."""
    trainer, state, tr, va = problem
    final, _ = uninterrupted
    script = tmp_path / "run.py"
    script.write_text(
        SETUP
        + textwrap.dedent(f"""
        import time
        trainer, state, tr, va = setup()
        train.fit(trainer, state, tr, va, train.{SCHEDULE!r}, workdir={str(tmp_path / "w")!r},
                  log=lambda r: time.sleep(2.0), **{KW!r})
        """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=dict(os.environ, JAX_PLATFORMS="cpu")
    )
    ckpt = tmp_path / "w" / "checkpoints"
    try:
        deadline = time.time() + 600  # imports and compiles take minutes on a loaded machine
        saved = False
        while not saved and time.time() < deadline and proc.poll() is None:
            # a step directory is complete once orbax wrote its commit marker
            saved = ckpt.exists() and any(
                p.name.isdigit() and (p / "commit_success.txt").exists() for p in ckpt.iterdir()
            )
            time.sleep(0.05)
        assert saved, "no checkpoint was written before the deadline"
        assert proc.poll() is None, "the training process ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    restored = train.restore_latest(str(tmp_path / "w"), state)
    assert 0 < int(restored.step) < 12
    seen = []
    resumed = train.fit(
        trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path / "w"), log=seen.append, **KW
    )
    assert seen[0]["step"] > int(restored.step)
    assert_same_state(resumed, final)


def test_early_stopping_keeps_best_params(tmp_path):
    # A learning rate that is zero after 2 steps: the validation loss stops improving.
    lr = optax.piecewise_constant_schedule(1e-3, {2: 0.0})
    trainer, state, tr, va = setup(optax.adam, lr)
    records = []
    patient = train.Schedule(
        n_steps=100, eval_every=2, checkpoint_every=50, early_stopping_patience=3
    )
    final = train.fit(
        trainer, state, tr, va, patient, workdir=str(tmp_path), progress=False, log=records.append,
    )  # fmt: skip
    # Evaluations at 2 (best), 4, 6, 8 (three without improvement): stop at step 8.
    assert [r["step"] for r in records] == [2, 4, 6, 8]
    assert [r["bad_epochs"] for r in records] == [0, 1, 2, 3]
    assert records[-1]["early_stopped"] and int(final.step) == 8
    assert float(final.best_val) == pytest.approx(records[0]["val_loss"], rel=1e-6)
    assert train.restore_latest(str(tmp_path), state).step == 8
    # A rerun finds the stopped run and does nothing more.
    again = train.fit(
        trainer, state, tr, va, patient, workdir=str(tmp_path), progress=False,
    )  # fmt: skip
    assert_same_state(again, final)
    np.testing.assert_allclose(final.best_params["sigma"], final.params["sigma"], rtol=1e-12)
    assert not np.allclose(final.best_params["sigma"], state.params["sigma"])


def test_continuing_a_state_in_memory_matches_one_run(problem, uninterrupted):
    trainer, state, tr, va = problem
    final, _ = uninterrupted
    half = train.fit(trainer, state, tr, va, SCHEDULE.replace(n_steps=6), workdir=None, **KW)
    assert int(half.step) == 6
    assert_same_state(train.fit(trainer, half, tr, va, SCHEDULE, workdir=None, **KW), final)


def test_schedule_is_validated_and_fit_wants_one(problem):
    with pytest.raises(ValueError, match="eval_every must be a positive number of updates, got 0"):
        train.Schedule(n_steps=4, eval_every=0, checkpoint_every=1)
    with pytest.raises(ValueError, match="early_stopping_patience must be >= 0"):
        train.Schedule(n_steps=4, eval_every=1, checkpoint_every=1, early_stopping_patience=-1)
    assert SCHEDULE.replace(n_steps=6).n_steps == 6 and SCHEDULE.seed == 5
    trainer, state, tr, va = problem
    with pytest.raises(TypeError, match="schedule must be a train.Schedule"):
        train.fit(trainer, state, tr, va, {"n_steps": 4}, workdir=None)


def test_damaged_checkpoint_and_cut_metrics_line_resume_from_the_last_good_step(
    problem, uninterrupted, tmp_path, capsys
):
    """A checkpoint step whose files were cut short (a crash or full disk mid-save) is moved
    aside and the run resumes from the step before; a metrics line cut short is dropped."""
    trainer, state, tr, va = problem
    final, _ = uninterrupted

    def kill_at_10(record):
        if record["step"] == 10:
            raise Killed

    with pytest.raises(Killed):
        train.fit(trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path), log=kill_at_10, **KW)
    step8 = tmp_path / "checkpoints" / "8"
    files = sorted(p for p in step8.rglob("*") if p.is_file() and p.stat().st_size > 0)
    assert files
    for p in files:  # every data file of step 8 cut to half its size
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "train_lo')  # a record cut off mid-write
    seen = []
    resumed = train.fit(
        trainer, state, tr, va, SCHEDULE, workdir=str(tmp_path), log=seen.append, **KW
    )
    out = capsys.readouterr()
    assert "checkpoint 8" in out.out + out.err and "cannot be restored" in out.out + out.err
    assert [r["step"] for r in seen] == [6, 8, 10, 12]  # resumed from step 4
    assert_same_state(resumed, final)
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4, 6, 8, 10, 12]
    aside = list((tmp_path / "checkpoints_damaged").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("8-")  # kept, not deleted


def test_checkpoints_of_another_model_give_a_named_error(problem, tmp_path):
    trainer, state, tr, va = problem
    train.fit(trainer, state, tr, va, SCHEDULE.replace(n_steps=4), workdir=str(tmp_path), **KW)
    other = state.replace(params={**state.params, "extra": np.zeros(2)})  # another model
    with pytest.raises(RuntimeError, match="no checkpoint in .*checkpoints can be restored"):
        train.restore_latest(str(tmp_path), other)
    assert (tmp_path / "checkpoints" / "4").exists()  # nothing moved or deleted
