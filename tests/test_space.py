"""Neighbor lists (cell lists and all pairs) and the minimum image, against brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_md import partition

from cgjax import neighbor_list_fn, potentials
from cgjax._neighbor_list import CAPACITY_MULTIPLE
from cgjax._space import make_space, min_image_fn, wrap, wrap_traced


def _pairs(nb, n):
    """Listed pairs ``(i, j)``; padding (index N, or a self pair) dropped."""
    idx = np.asarray(nb.idx)
    if nb.format == partition.NeighborListFormat.Dense:
        return {(i, int(j)) for i in range(n) for j in idx[i] if j < n and j != i}
    return {(int(i), int(j)) for i, j in idx.T if i < n and j < n and i != j}


def _brute(R, box, r_list):
    """Directed pairs within ``r_list`` (nm) by numpy, minimum image in a box matrix."""
    R = np.asarray(R, np.float64)
    d = R[None, :, :] - R[:, None, :]
    if box is not None:
        box = np.asarray(box, np.float64)
        box = np.diag(np.full(3, box)) if box.ndim == 0 else box
        u = d @ np.linalg.inv(box).T
        d = (u - np.round(u)) @ box.T
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(r < r_list), strict=True)}


def _check(nb, R, box, r_list, fmt):
    n = R.shape[0]
    want, got = _brute(R, box, r_list), _pairs(nb, n)
    if fmt == "ordered_sparse":
        assert len(got) == len(want) // 2  # each pair once
        got = got | {(j, i) for i, j in got}
    assert got == want


CASES = {
    "all pairs": dict(n=150, box=2.0, cutoff=0.5, cell_list=None),
    "cell list": dict(n=1500, box=4.2, cutoff=0.6, cell_list=None),  # 6 cells per axis
    "cell list, 3 cells": dict(n=300, box=2.1, cutoff=0.6, cell_list=True),
    "free space": dict(n=200, box=None, cutoff=0.5, cell_list=None),
    "triclinic": dict(
        n=150,
        box=np.array([[2.0, 0.3, 0.2], [0.0, 2.1, 0.25], [0.0, 0.0, 1.9]]),
        cutoff=0.45,
        cell_list=None,
    ),  # fmt: skip
}


@pytest.mark.parametrize("fmt", ["sparse", "ordered_sparse", "dense"])
@pytest.mark.parametrize("case", list(CASES))
def test_pairs_equal_brute_force_after_allocate_update_and_rebuild(case, fmt):
    c = CASES[case]
    rng = np.random.default_rng(0)
    extent = 2.0 if c["box"] is None else np.diag(np.atleast_2d(c["box"]) * np.ones((3, 3)))
    R = (rng.uniform(0, 1, (c["n"], 3)) * extent).astype(np.float32)
    nf = neighbor_list_fn(c["box"], c["cutoff"], skin=0.1, format=fmt, cell_list=c["cell_list"])
    assert (nf.grid is not None) == (case.startswith("cell list"))
    r_list = c["cutoff"] + 0.1
    nb = nf.allocate(R)
    assert not bool(nb.did_buffer_overflow)
    m = CAPACITY_MULTIPLE // 8 if fmt == "dense" else CAPACITY_MULTIPLE
    assert nb.idx.shape[-1] % m == 0
    _check(nb, R, c["box"], r_list, fmt)
    # under skin / 2: update keeps the list; rebuild builds it afresh
    near = R + np.float32(0.02)
    kept = jax.jit(nf.update)(near, nb)
    np.testing.assert_array_equal(kept.reference_position, R)
    np.testing.assert_array_equal(kept.idx, nb.idx)
    fresh = jax.jit(nf.rebuild)(near, nb)
    np.testing.assert_array_equal(fresh.reference_position, near)
    _check(fresh, near, c["box"], r_list, fmt)
    # beyond skin / 2 (and across the box's faces): update rebuilds
    moved = (R + rng.normal(0, 0.05, R.shape)).astype(np.float32)
    up = jax.jit(nf.update)(moved, nb)
    assert not bool(up.did_buffer_overflow)
    np.testing.assert_array_equal(up.reference_position, moved)
    _check(up, moved, c["box"], r_list, fmt)


def test_padding_is_self_pairs_spread_over_particles_and_edges_are_scattered():
    n, L = 864, 3.47
    R = np.random.default_rng(1).uniform(0, L, (n, 3)).astype(np.float32)
    nb = neighbor_list_fn(L, 0.85, skin=0.1, format="ordered_sparse").allocate(R)
    i, j = np.asarray(nb.idx)
    pad = i == j
    assert pad.sum() > 0 and np.all(i < n) and np.all(j < n)
    # not piled onto one particle: no particle takes more than twice its share
    assert np.bincount(i[pad]).max() <= 2 * np.ceil(pad.sum() / n)
    # consecutive edges share a receiver rarely (XLA's CPU scatter-add is slow when they do)
    assert np.mean(i[1:] == i[:-1]) < 0.02


def test_overflow_of_each_capacity_is_flagged_and_allocate_grows_it():
    n, L = 2000, 5.0
    rng = np.random.default_rng(2)
    R = rng.uniform(0, L, (n, 3)).astype(np.float32)
    nf = neighbor_list_fn(L, 0.6, skin=0.1, format="sparse")
    nb = nf.allocate(R)
    assert nf.grid == (7, 7, 7)
    # squeeze 80 particles into one cell: cells, rows and edges overflow
    packed = R.copy()
    packed[:80] = rng.uniform(0, 0.7, (80, 3))
    up = nf.update(packed, nb)
    assert bool(up.did_buffer_overflow)
    wider = nf.allocate(packed, at_least=nb)
    assert wider.idx.shape[-1] >= 1.25 * nb.idx.shape[-1]
    assert wider.row_capacity >= 1.25 * nb.row_capacity
    assert wider.cell_capacity >= 1.25 * nb.cell_capacity
    assert not bool(wider.did_buffer_overflow)
    _check(wider, packed, L, 0.7, "sparse")
    # the flag sticks until the list is reallocated
    assert bool(nf.update(R, up).did_buffer_overflow)


def test_replicas_share_capacities_and_size_for_covers_every_frame():
    n, L = 100, 2.0
    rng = np.random.default_rng(3)
    R = rng.uniform(0, L, (3, n, 3)).astype(np.float32)
    nf = neighbor_list_fn(L, 0.5, skin=0.1, format="sparse")
    batched = nf.allocate(R)
    assert batched.idx.shape[0] == 3 and batched.overflow.shape == (3,)
    for b in range(3):
        one = jax.tree.map(lambda x, b=b: x[b], batched)
        _check(one, R[b], L, 0.6, "sparse")
    single = nf.allocate(R[0], size_for=R)
    assert single.idx.shape == batched.idx.shape[1:]
    for b in range(3):
        _check(nf.rebuild(jnp.asarray(R[b]), single), R[b], L, 0.6, "sparse")


def test_tiny_system_survives_a_rebuild():
    L = 2.0
    R = np.array([[0.1, 0.1, 0.1], [0.4, 0.1, 0.1], [1.0, 1.0, 1.0]], np.float32)
    for fmt in ("sparse", "ordered_sparse", "dense"):
        nf = neighbor_list_fn(L, 0.5, skin=0.1, format=fmt)
        nb = nf.allocate(R)
        rb = nf.rebuild(jnp.asarray(R + np.float32(0.3)), nb)
        assert rb.idx.shape == nb.idx.shape
        _check(rb, R + np.float32(0.3), L, 0.6, fmt)


def test_energy_and_forces_equal_those_on_jax_md_lists():
    jax.config.update("jax_enable_x64", True)
    n, L = 300, 2.6
    R = jnp.asarray(np.random.default_rng(4).uniform(0, L, (n, 3)))
    lj = potentials.LennardJones(sigma=0.2, epsilon=1.0, cutoff=0.7, param_dtype=jnp.float64)
    gnn = potentials.GNN(embed_dim=4, message_dim=4, n_rbf=6, cutoff=0.6, n_species=1,
                         param_dtype=jnp.float64)  # fmt: skip
    hf = potentials.HighFrequency(amplitude=0.08, omega=1000.0, cutoff=0.6, param_dtype=jnp.float64)
    for pot in (potentials.sum_of(lj, gnn, hf),):  # pair terms and message passing
        model = potentials.energy_model(pot, species=np.zeros(n, int), box=L)
        params = model.init_fn(jax.random.key(0), R)
        e = model.energy_fn(params)
        ref = partition.neighbor_list(
            make_space(L)[0], L, model.cutoff, dr_threshold=0.1,
            format=partition.NeighborListFormat.Sparse,
        ).allocate(R)  # fmt: skip
        for fmt in ("sparse", "ordered_sparse", "dense"):
            nb = model.neighbor_fn(skin=0.1, format=fmt).allocate(R)
            np.testing.assert_allclose(e(R, neighbor=nb), e(R, neighbor=ref), rtol=1e-12)
            np.testing.assert_allclose(
                jax.grad(e)(R, neighbor=nb), jax.grad(e)(R, neighbor=ref), rtol=1e-9, atol=1e-9
            )


def test_min_image_equals_jax_md_displacement():
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(5)
    dR = jnp.asarray(rng.uniform(-7, 7, (1000, 3)))
    L = np.array([2.0, 2.5, 3.0])
    got = min_image_fn(L)(dR)
    want = jax.vmap(make_space(np.diag(L) + np.array([[0, 1e-9, 0], [0, 0, 0], [0, 0, 0]]))[0])(
        dR, jnp.zeros_like(dR)
    )  # the triclinic (fractional) route of a nearly orthorhombic box
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert np.all(np.abs(np.asarray(got)) <= L / 2 + 1e-12)


def test_bad_arguments_give_named_errors():
    with pytest.raises(ValueError, match="format must be one of"):
        neighbor_list_fn(2.0, 0.5, format="csr")
    with pytest.raises(ValueError, match="too small for the cutoff"):
        neighbor_list_fn(1.0, 0.5)
    with pytest.raises(ValueError, match="3 cells"):
        neighbor_list_fn(2.5, 0.5, skin=0.4, cell_list=True)
    with pytest.raises(ValueError, match="orthorhombic"):
        neighbor_list_fn(None, 0.5, cell_list=True)
    with pytest.raises(ValueError, match=r"\[N, 3\] or \[B, N, 3\]"):
        neighbor_list_fn(2.0, 0.5).allocate(np.zeros((4, 2)))


def test_wrap_traced_matches_wrap_on_the_host():
    rng = np.random.default_rng(3)
    box = np.array([[2.0, 0.4, -0.3], [0.0, 1.8, 0.2], [0.0, 0.0, 2.2]])
    R = rng.uniform(-5.0, 5.0, (50, 3))
    host = wrap(R, box)
    traced = np.asarray(jax.jit(lambda x: wrap_traced(x, box))(jnp.asarray(R)))
    np.testing.assert_allclose(traced, host, atol=1e-5)
    frac = np.linalg.solve(box, traced.T).T
    assert np.all((frac >= 0) & (frac < 1))
