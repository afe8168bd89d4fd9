"""Neighbor-list capacities are padded to a multiple (XLA's CPU code is slow on odd lengths)."""

import jax
import numpy as np
import pytest

from cgjax import potentials
from cgjax._space import CAPACITY_MULTIPLE, pad_neighbor_list


def _pairs(nb, n):
    idx = np.asarray(nb.idx)
    if nb.format.name == "Dense":
        return {(i, int(j)) for i in range(n) for j in idx[i] if j < n}
    return {(int(i), int(j)) for i, j in idx.T if i < n and j < n}


@pytest.mark.parametrize("fmt", ["sparse", "ordered_sparse", "dense"])
def test_allocated_capacity_is_padded_and_kept_by_updates(fmt):
    n, L = 100, 2.0
    R = np.random.default_rng(0).uniform(0, L, (n, 3)).astype(np.float32)
    lj = potentials.LennardJones(sigma=0.3, epsilon=1.0, cutoff=0.5)
    model = potentials.energy_model(lj, species=np.zeros(n, int), box=L)
    nf = model.neighbor_fn(skin=0.1, format=fmt)
    raw = nf.fns.allocate(R)  # jax-md's own list
    nb = nf.allocate(R)
    m = CAPACITY_MULTIPLE // 8 if fmt == "dense" else CAPACITY_MULTIPLE
    assert nb.idx.shape[-1] % m == 0 and 0 <= nb.idx.shape[-1] - raw.idx.shape[-1] < m
    assert nb.max_occupancy == nb.idx.shape[-1]
    assert _pairs(nb, n) == _pairs(raw, n)  # the padding holds no pair
    moved = R + np.float32(0.04)
    up = jax.jit(nf.update)(moved, nb)
    assert up.idx.shape == nb.idx.shape and not bool(up.did_buffer_overflow)
    assert _pairs(up, n) == _pairs(nf.fns.update(moved, raw), n)
    # the energy does not see the padding
    params = model.init_fn(jax.random.key(0), R)
    e = model.energy_fn(params)
    np.testing.assert_allclose(e(R, neighbor=nb), e(R, neighbor=raw), rtol=1e-6)
    assert pad_neighbor_list(nb, n) is nb  # already a multiple: unchanged
    # rebuild: always afresh, even for moves under skin / 2 that update leaves alone
    near = R + np.float32(0.01)
    np.testing.assert_array_equal(nf.update(near, nb).reference_position, R)  # not rebuilt
    rb = jax.jit(nf.rebuild)(near, nb)
    np.testing.assert_array_equal(rb.reference_position, near)
    assert rb.idx.shape == nb.idx.shape
    assert _pairs(rb, n) == _pairs(nf.fns.allocate(near), n)


@pytest.mark.parametrize("fmt", ["sparse", "ordered_sparse", "dense"])
def test_padding_of_a_tiny_system_survives_a_rebuild(fmt):
    # 3 particles: padding to a multiple would exceed the candidates a rebuild
    # makes (N^2 sparse), and jax-md's rebuild could not return the list's shape
    L = 2.0
    R = np.array([[0.1, 0.1, 0.1], [0.4, 0.1, 0.1], [1.0, 1.0, 1.0]], np.float32)
    lj = potentials.LennardJones(sigma=0.3, epsilon=1.0, cutoff=0.5)
    model = potentials.energy_model(lj, species=np.zeros(3, int), box=L)
    nf = model.neighbor_fn(skin=0.1, format=fmt)
    nb = nf.allocate(R)
    rb = nf.rebuild(R + np.float32(0.3), nb)
    assert rb.idx.shape == nb.idx.shape
    assert _pairs(rb, 3) == _pairs(nf.fns.allocate(R + np.float32(0.3)), 3)
