"""Ensembles: K members in one jit, seeds, model deviation (paper 002 eq. 15), mean force."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cgjax import losses, potentials, train

K, N, L = 4, 8, 1.2  # members, particles, box (nm)


@pytest.fixture(scope="module")
def setup():
    g = (np.arange(2) + 0.5) * L / 2
    lattice = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    R = lattice[None] + np.random.default_rng(0).normal(0.0, 0.05, (10, N, 3))
    lj = potentials.energy_model(
        potentials.LennardJones(sigma=0.34, epsilon=1.0, cutoff=0.5, param_dtype=jnp.float64),
        species=np.zeros(N, np.int32),
        box=L,
    )
    F = np.asarray(jax.vmap(lj.force_fn(lj.init_fn(jax.random.key(0), R[0])))(R))
    gnn = potentials.GNN(
        n_species=1, embed_dim=4, message_dim=4, n_layers=1, n_rbf=4, cutoff=0.5,
        param_dtype=jnp.float64,
    )  # fmt: skip
    model = potentials.energy_model(gnn, species=np.zeros(N, np.int32), box=L)
    traces = []
    fm = losses.force_matching_loss(model)

    def counted(params, batch):
        traces.append(1)  # runs once per trace, never per step
        return fm(params, batch)

    single = train.force_matching(model, optax.adam(1e-2), batch_size=2, loss=losses.Loss(counted))
    ens = train.ensemble(single, K)
    data = {"positions": R[:6], "forces": F[:6]}, {"positions": R[6:], "forces": F[6:]}
    return model, ens, traces, data, R, F


def same(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def member(tree, k):
    return jax.tree.map(lambda x: x[k], tree)


def test_k_members_train_in_one_jit_and_differ_only_by_seed(setup, tmp_path):
    model, ens, traces, (tr, va), R, _ = setup
    params = train.init_ensemble_params(model, jax.random.key(0), R[0], K)
    # Member k is initialised from fold_in(key, k).
    for k in range(K):
        expect = model.init_fn(jax.random.fold_in(jax.random.key(0), k), R[0])
        assert same(member(params, k), expect)
    state = ens.init_fn(jax.random.key(1), params)
    records = []
    kw = dict(progress=False)
    schedule = train.Schedule(n_steps=6, eval_every=3, checkpoint_every=3)
    final = train.fit(ens, state, tr, va, schedule, workdir=str(tmp_path), log=records.append, **kw)
    assert len(traces) == 1 and ens.update_fn._cache_size() == 1  # one trace for all K and steps
    assert np.shape(final.step) == (K,) and np.all(np.asarray(final.step) == 6)
    assert len(records[-1]["val_force_rmse"]) == K and len(records[-1]["train_loss"]) == K
    # Different seeds: every pair of members differs after training.
    w = [
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(member(final.params, k))])
        for k in range(K)
    ]
    for i in range(K):
        for j in range(i + 1, K):
            assert not np.allclose(w[i], w[j])
    # Same seed for every member, same data: identical members.
    params0 = jax.tree.map(lambda x: jnp.repeat(x[:1], K, axis=0), params)
    final0 = train.fit(
        ens, ens.init_fn(jax.random.key(1), params0), tr, va, schedule, workdir=None, **kw
    )
    for k in range(1, K):
        assert same(member(final0.params, k), member(final0.params, 0))
    assert same(member(final0.params, 0), member(final.params, 0))  # member 0 kept its seed
    assert len(traces) == 1
    # Each member is exactly what training it alone gives.
    alone = train.force_matching(model, optax.adam(1e-2), batch_size=2)
    s = alone.init_fn(jax.random.key(1), member(params, 2))
    for step in range(6):
        idx = train.minibatch_indices(0, step, 6, 2)
        s, _ = alone.update_fn(s, {k: v[idx] for k, v in tr.items()})
    for x, y in zip(
        jax.tree.leaves(s.params), jax.tree.leaves(member(final.params, 2)), strict=True
    ):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    # Resume restores the stacked state.
    assert same(train.restore_latest(str(tmp_path), state).params, final.params)


def test_model_deviation_closed_form():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(3, N, 3))
    # Two members +f and -f: the mean is 0 and each deviates by |f|.
    f = F[0]
    sigma = train.model_deviation(np.stack([f, -f]))
    np.testing.assert_allclose(sigma, np.linalg.norm(f, axis=-1), rtol=1e-12)
    expect = np.sqrt(np.mean(np.sum((F - F.mean(0)) ** 2, -1), 0))
    np.testing.assert_allclose(train.model_deviation(F), expect, rtol=1e-12)
    assert float(train.model_deviation(F, reduce="max")) == pytest.approx(expect.max())
    assert float(train.model_deviation(F, reduce="mean")) == pytest.approx(expect.mean())
    np.testing.assert_allclose(train.model_deviation(np.stack([f, f, f])), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match=r"\[K, N, 3\]"):
        train.model_deviation(f)


def test_ensemble_energy_is_the_member_mean(setup):
    model, _, _, _, R, _ = setup
    params = train.init_ensemble_params(model, jax.random.key(2), R[0], K)
    energy = train.ensemble_energy_fn(model, params)
    members = [model.energy_fn(member(params, k)) for k in range(K)]
    e = [float(m(R[0])) for m in members]
    assert float(energy(R[0])) == pytest.approx(np.mean(e), rel=1e-12)
    f = [np.asarray(-jax.grad(m)(R[0])) for m in members]
    np.testing.assert_allclose(-jax.grad(energy)(R[0]), np.mean(f, 0), rtol=1e-10, atol=1e-12)
    assert float(train.model_deviation(np.stack(f), reduce="max")) > 0


def test_kfold_ensemble_trains_each_member_on_its_fold(setup, tmp_path):
    model, _, _, _, R, F = setup
    alone = train.force_matching(model, optax.adam(1e-2), batch_size=2)
    ens = train.ensemble(alone, K, same_batches=False)
    folds = train.kfold_indices(len(R), K, seed=0)
    sets = [
        ({"positions": R[t], "forces": F[t]}, {"positions": R[v], "forces": F[v]}) for t, v in folds
    ]
    trs, vas = [s[0] for s in sets], [s[1] for s in sets]
    params = train.init_ensemble_params(model, jax.random.key(0), R[0], K)
    state = ens.init_fn(jax.random.key(1), params)
    records = []
    kw = dict(progress=False)
    schedule = train.Schedule(n_steps=4, eval_every=4, checkpoint_every=4, seed=3)
    final = train.fit(
        ens, state, trs, vas, schedule, workdir=str(tmp_path), log=records.append, **kw
    )
    with pytest.raises(ValueError, match="list of K = 4"):
        train.fit(ens, state, trs[0], vas, schedule, workdir=None, **kw)
    # Member k: its own fold, its own batch order over that fold, its own validation.
    k = 1
    s = alone.init_fn(jax.random.key(1), member(params, k))
    s = train.fit(alone, s, trs[k], vas[k], schedule, workdir=None, **kw)
    for x, y in zip(
        jax.tree.leaves(s.params), jax.tree.leaves(member(final.params, k)), strict=True
    ):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    err = train.evaluate(alone, s.params, vas[k])
    assert records[-1]["val_force_rmse"][k] == pytest.approx(err["rmse"], rel=1e-10)
    assert len(set(np.round(records[-1]["val_force_rmse"], 8))) == K
    # Own training folds, one shared validation set (the sweep engine's layout).
    shared = train.ensemble(alone, K, same_batches=False, same_val_batches=True)
    assert shared.member_batches and not shared.member_val_batches
    with pytest.raises(ValueError, match="val_frames is a list.*same_val_batches=False"):
        train.fit(shared, state, trs, vas, schedule, workdir=None, **kw)
    out = train.fit(shared, state, trs, vas[0], schedule, workdir=None, log=records.append, **kw)
    assert same(out.params, final.params)  # the same updates
    err = train.evaluate(alone, s.params, vas[0])
    assert records[-1]["val_force_rmse"][k] == pytest.approx(err["rmse"], rel=1e-10)


def test_kfold_indices_partition():
    folds = train.kfold_indices(23, 5, seed=1)
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(23))
    for t, v in folds:
        assert not set(t) & set(v) and len(t) + len(v) == 23
        assert np.all(np.diff(v) == 1)  # contiguous block
    with pytest.raises(ValueError, match="n_folds"):
        train.kfold_indices(3, 5)
