"""Force-matching trainer: losses, recovery of known LJ parameters, bad input, divergence."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import cgjax
from cgjax import data, losses, potentials, train, units

L, N, CUTOFF = 1.6, 64, 0.75  # nm; box > 2 cutoffs
SIGMA, EPS = 0.34, 1.0


def lj_model(sigma, epsilon):
    pot = potentials.LennardJones(
        sigma=sigma, epsilon=epsilon, cutoff=CUTOFF, param_dtype=jnp.float64
    )
    return potentials.energy_model(pot, species=np.zeros(N, np.int32), box=L)


def lj_frames(n_frames=20, seed=0):
    """Jittered 4x4x4 lattice (liquid-like density, reduced ~0.6) with exact LJ forces."""
    g = (np.arange(4) + 0.5) * L / 4
    lattice = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    R = lattice[None] + np.random.default_rng(seed).normal(0.0, 0.03, (n_frames, N, 3))
    model = lj_model(SIGMA, EPS)
    params = model.init_fn(jax.random.key(0), R[0])
    F = np.asarray(jax.vmap(model.force_fn(params))(R))
    return {"positions": R, "forces": F}


@pytest.fixture(scope="module")
def frames():
    return lj_frames()


@pytest.fixture(scope="module")
def model():
    return lj_model(0.32, 0.8)


def split(d):
    return {k: v[:16] for k, v in d.items()}, {k: v[16:] for k, v in d.items()}


# --- losses ------------------------------------------------------------------------------


def test_force_errors_closed_form():
    rng = np.random.default_rng(1)
    pred, ref = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    d = pred - ref
    np.testing.assert_allclose(losses.force_mse(pred, ref), np.mean(d**2), rtol=1e-12)
    np.testing.assert_allclose(
        losses.force_rmse_mae(pred, ref), np.sqrt(np.mean(d**2)) + np.mean(np.abs(d)), rtol=1e-12
    )
    mask = np.zeros((2, 5))
    mask[0, :2] = 1.0
    np.testing.assert_allclose(
        losses.force_mse(pred, ref, mask=mask), np.mean(d[0, :2] ** 2), rtol=1e-12
    )
    with pytest.raises(ValueError, match="mask"):
        losses.force_mse(pred, ref, mask=np.ones(5))
    with pytest.raises(ValueError, match="same shape"):
        losses.force_mse(pred, ref[:1])


def test_losses_compose():
    a = losses.Loss(lambda p, b: p * b)
    b = losses.Loss(lambda p, b: p + b)
    total = a + 0.1 * b + (lambda p, b: 2.0 * p)
    assert float(total(3.0, 2.0)) == pytest.approx(6.0 + 0.1 * 5.0 + 6.0)
    assert float((a * 2.0)(3.0, 2.0)) == pytest.approx(12.0)
    assert float(sum([a, b])(3.0, 2.0)) == pytest.approx(11.0)
    g = jax.grad(lambda p: (a + 0.5 * b)(p, 2.0))(3.0)
    assert float(g) == pytest.approx(2.0 + 0.5)


# --- recovery ----------------------------------------------------------------------------


def test_recovers_lennard_jones(model, frames, tmp_path):
    """Forces of LJ(0.34 nm, 1 kJ/mol); start at (0.32, 0.8); Adam recovers both to 1 %.

    sigma and epsilon lie in a long curved valley (epsilon * sigma^12 is fixed
    by the repulsive wall), so each gets its own Adam step size.
    """
    optimizer = optax.multi_transform(
        {"sigma": optax.adam(3e-4), "epsilon": optax.adam(3e-3)},
        {"sigma": "sigma", "epsilon": "epsilon"},
    )
    trainer = train.force_matching(model, optimizer, batch_size=8)
    p0 = model.init_fn(jax.random.key(0), frames["positions"][0])
    state = trainer.init_fn(jax.random.key(1), p0)
    tr, va = split(frames)
    records = []
    state = train.fit(
        trainer, state, tr, va, train.Schedule(n_steps=300, eval_every=100, checkpoint_every=300),
        workdir=str(tmp_path), log=records.append, progress=False,
    )  # fmt: skip
    sigma, eps = float(state.params["sigma"][0, 0]), float(state.params["epsilon"][0, 0])
    assert sigma == pytest.approx(SIGMA, rel=0.01)
    assert eps == pytest.approx(EPS, rel=0.01)
    # The metrics file: one record per evaluation, RMSE in both unit systems.
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [100, 200, 300] == [r["step"] for r in records]
    last = lines[-1]
    assert last["val_force_rmse_kcal_per_mol_per_A"] == pytest.approx(
        last["val_force_rmse"] / units.kcal_per_mol_per_angstrom
    )
    assert last["val_force_rmse"] < lines[0]["val_force_rmse"]
    assert last["val_loss"] == pytest.approx(last["val_force_rmse"] ** 2)
    # The update was compiled once for all 300 steps.
    assert trainer.update_fn._cache_size() == 1


# --- bad input ---------------------------------------------------------------------------


def test_bad_input(model, frames):
    trainer = train.force_matching(model, optax.adam(1e-3), batch_size=4)
    state = trainer.init_fn(
        jax.random.key(0), {"sigma": jnp.ones((1, 1)), "epsilon": jnp.ones((1, 1))}
    )
    tr, va = split(frames)
    kw = dict(workdir=None, progress=False)
    one = train.Schedule(n_steps=1, eval_every=1, checkpoint_every=1)
    bad = dict(tr, forces=tr["forces"].copy())
    bad["forces"][3, 5, 1] = np.nan
    with pytest.raises(ValueError, match=r"train_frames\.forces.*non-finite.*\(3, 5, 1\)"):
        train.fit(trainer, state, bad, va, one, **kw)
    empty = {k: v[:0] for k, v in va.items()}
    with pytest.raises(ValueError, match="val_frames has zero frames"):
        train.fit(trainer, state, tr, empty, one, **kw)
    with pytest.raises(ValueError, match="forces are missing"):
        train.fit(trainer, state, {"positions": tr["positions"]}, va, one, **kw)
    with pytest.raises(ValueError, match="batch_size 4 exceeds"):
        train.fit(trainer, state, {k: v[:3] for k, v in tr.items()}, va, one, **kw)
    # Frames validates its own arrays (and names them).
    with pytest.raises(ValueError, match="forces has 1 non-finite"):
        data.Frames(bad["positions"], np.zeros(N, int), np.ones(N), forces=bad["forces"])


def test_divergence_keeps_last_good_checkpoint(model, frames, tmp_path):
    """Four tiny SGD steps, then a huge learning rate: NaN, a named error, a good checkpoint."""
    lr = optax.piecewise_constant_schedule(1e-9, {4: 1e9})
    trainer = train.force_matching(model, optax.sgd(lr), batch_size=4)
    p0 = model.init_fn(jax.random.key(0), frames["positions"][0])
    state = trainer.init_fn(jax.random.key(0), p0)
    tr, va = split(frames)
    with pytest.raises(train.TrainingDiverged, match=r"diverged at step \d+") as err:
        train.fit(
            trainer, state, tr, va, train.Schedule(n_steps=40, eval_every=2, checkpoint_every=2),
            workdir=str(tmp_path), progress=False,
        )  # fmt: skip
    assert isinstance(err.value, ValueError)
    assert err.value.step >= 5
    mgr = ocp.CheckpointManager(tmp_path / "checkpoints")
    last = mgr.latest_step()
    assert last is not None and last < err.value.step
    assert f"last good checkpoint is step {last}" in str(err.value)
    restored = train.restore_latest(str(tmp_path), state)
    assert int(restored.step) == last
    assert bool(train.tree_all_finite(restored.params))
    np.testing.assert_allclose(restored.params["sigma"], 0.32, rtol=0.02)
    assert last == 4 and err.value.step in (5, 6)  # the first steps of lr 1e9


def test_neighbor_list_matches_all_pairs(model, frames):
    tr, va = split(frames)
    p0 = model.init_fn(jax.random.key(0), frames["positions"][0])
    nb = cgjax.allocate_neighbor_list(model, frames["positions"])
    with_nb = train.force_matching(model, optax.adam(1e-3), batch_size=4, neighbor=nb)
    all_pairs = train.force_matching(model, optax.adam(1e-3), batch_size=4)
    batch = {k: v[:4] for k, v in tr.items()}
    sa, ma = with_nb.update_fn(with_nb.init_fn(jax.random.key(0), p0), batch)
    sb, mb = all_pairs.update_fn(all_pairs.init_fn(jax.random.key(0), p0), batch)
    assert not bool(ma["overflow"])
    assert float(ma["loss"]) == pytest.approx(float(mb["loss"]), rel=1e-10)
    np.testing.assert_allclose(sa.params["sigma"], sb.params["sigma"], rtol=1e-12)
    ea, eb = train.evaluate(with_nb, p0, va), train.evaluate(all_pairs, p0, va)
    assert ea["rmse"] == pytest.approx(eb["rmse"], rel=1e-10)
    # Too small a list is widened and the update rerun, never silently dropped pairs.
    small = cgjax.allocate_neighbor_list(model, frames["positions"], capacity_multiplier=0.5)
    short = train.force_matching(model, optax.adam(1e-3), batch_size=4, neighbor=small)
    _, m_short = short.update_fn(short.init_fn(jax.random.key(0), p0), batch)
    assert bool(m_short["overflow"])
    wide = short.reallocate(batch["positions"])
    assert wide.reallocate is not None
    assert wide.neighbor.idx.shape[-1] >= 1.25 * small.idx.shape[-1]
    records = []
    two = train.Schedule(n_steps=2, eval_every=2, checkpoint_every=2)
    state = train.fit(
        short, short.init_fn(jax.random.key(0), p0), tr, va, two, workdir=None, progress=False,
        log=records.append,
    )  # fmt: skip
    ref = train.fit(
        all_pairs, all_pairs.init_fn(jax.random.key(0), p0), tr, va, two, workdir=None,
        progress=False,
    )  # fmt: skip
    assert records[-1]["neighbor_reallocations"] >= 1
    np.testing.assert_allclose(state.params["sigma"], ref.params["sigma"], rtol=1e-10)
    np.testing.assert_allclose(state.params["epsilon"], ref.params["epsilon"], rtol=1e-10)
    assert records[-1]["val_loss"] == pytest.approx(float(ref.best_val), rel=1e-6)  # f32 best_val


@pytest.mark.slow
def test_spce_gnn_with_neighbor_list(tmp_path):
    """The shipped 512-water data (float32) through a small GNN with a neighbor list."""
    from cgjax import datasets

    fr = datasets.load("spce_512")
    a, b, _ = data.split_blocks(fr.n_frames, (0.8, 0.1, 0.1), n_blocks=10)
    trf, vaf = fr.select(a[:40]), fr.select(b[:8])
    gnn = potentials.GNN(n_species=1, embed_dim=8, message_dim=8, n_layers=1, n_rbf=8, cutoff=0.6)
    model = potentials.energy_model(gnn, species=fr.species, box=fr.box)
    # Cell-list occupancy differs between frames; the list must cover all of them.
    nb = cgjax.allocate_neighbor_list(model, np.concatenate([trf.positions, vaf.positions]))
    trainer = train.force_matching(model, optax.adam(1e-3), batch_size=4, neighbor=nb)
    params = model.init_fn(jax.random.key(0), trf.positions[0], neighbor=nb)
    state = trainer.init_fn(jax.random.key(0), params)
    records = []
    state = train.fit(
        trainer, state, trf, vaf, train.Schedule(n_steps=20, eval_every=10, checkpoint_every=10),
        workdir=str(tmp_path), log=records.append, progress=False,
    )  # fmt: skip
    assert state.params["embedding"]["embedding"].dtype == jnp.float32
    assert records[-1]["val_loss"] < records[0]["val_loss"]


def test_frozen_prior_learns_only_the_correction(frames):
    """``frozen=("prior",)``: the prior's parameters are bitwise unchanged, the rest trains."""
    prior = potentials.SoftRepulsion(sigma=0.25, exponent=12.0, cutoff=CUTOFF,
                                     param_dtype=jnp.float64)  # fmt: skip
    lj = potentials.LennardJones(sigma=0.32, epsilon=0.8, cutoff=CUTOFF, param_dtype=jnp.float64)
    model = potentials.energy_model(
        potentials.sum_of(prior=prior, lj=lj), species=np.zeros(N, np.int32), box=L
    )
    p0 = model.init_fn(jax.random.key(0), frames["positions"][0])
    assert set(p0) == {"prior", "lj"}
    tr, va = split(frames)
    trainer = train.force_matching(model, optax.adam(1e-2), batch_size=4, frozen=("prior",))
    state = train.fit(
        trainer, trainer.init_fn(jax.random.key(0), p0), tr, va,
        train.Schedule(n_steps=20, eval_every=20, checkpoint_every=20), workdir=None,
        progress=False,
    )  # fmt: skip
    assert jax.tree.all(jax.tree.map(np.array_equal, state.params["prior"], p0["prior"]))
    assert abs(float(state.params["lj"]["sigma"][0, 0]) - 0.32) > 1e-3
    with pytest.raises(ValueError, match=r"frozen terms \['prio'\].*\['lj', 'prior'\]"):
        train.force_matching(model, optax.adam(1e-2), batch_size=4, frozen=("prio",)).init_fn(
            jax.random.key(0), p0
        )


def test_fm_settings_from_config_validate_and_build_the_loop():
    section = {"lr": 3e-2, "n_steps": 600, "batch_size": 2, "eval_every": 50,
               "checkpoint_every": 50, "clip_norm": 100.0, "train_stride": 5}  # fmt: skip
    s = train.FMSettings.from_config(section, seed=3, frozen=["lj"])
    assert s.frozen == ("lj",) and s.lr_final_fraction == 0.01 and s.patience is None
    assert s.schedule() == train.Schedule(600, 50, 50, early_stopping_patience=None, seed=3)
    with pytest.raises(ValueError, match=r"FMSettings.lr must be a positive learning rate"):
        train.FMSettings.from_config({**section, "lr": -1.0})
    with pytest.raises(ValueError, match=r"FMSettings.clip_norm"):
        train.FMSettings.from_config({**section, "clip_norm": 0.0})
    with pytest.raises(ValueError, match=r"checkpoint_every must be a positive"):
        train.FMSettings.from_config({**section, "checkpoint_every": 0})
    with pytest.raises(ValueError, match=r"\['seed'\] set both"):
        train.FMSettings.from_config({**section, "seed": 1}, seed=2)
