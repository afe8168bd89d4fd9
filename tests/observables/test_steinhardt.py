import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import legendre

from cgjax import observables
from cgjax.observables._steinhardt import _harmonics


def lattice(basis, cell, reps):
    """Positions [N, 3] and box [3] (nm) of a crystal from an orthorhombic cell."""
    cells = np.stack(np.meshgrid(*[np.arange(n) for n in reps], indexing="ij"), -1)
    frac = cells.reshape(-1, 1, 3) + np.asarray(basis)
    return (frac * np.asarray(cell)).reshape(-1, 3), np.asarray(cell) * np.asarray(reps)


A = 0.4  # nm, lattice constant (nearest-neighbour distance for HCP)
FCC = lattice([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], [A] * 3, (2, 2, 2))
BCC = lattice([[0, 0, 0], [0.5, 0.5, 0.5]], [A] * 3, (3, 3, 3))  # shells: 8 at 0.87a, 6 at a
HCP = lattice(  # ideal c/a; orthohexagonal cell a x sqrt(3) a x c with 4 sites
    [[0, 0, 0], [0.5, 0.5, 0], [0.5, 5 / 6, 0.5], [0, 1 / 3, 0.5]],
    [A, np.sqrt(3) * A, np.sqrt(8 / 3) * A],
    (3, 2, 2),
)


@pytest.mark.parametrize(
    "crystal,kwargs,q4,q6",
    [
        # literature values (Lechner & Dellago 2008) to 1e-3; first shells of 12
        (FCC, {"cutoff": 0.85 * A}, 0.191, 0.575),
        (HCP, {"cutoff": 1.2 * A}, 0.097, 0.485),
        # 0.036 / 0.511 is BCC with 14 neighbours (8 + 6: the two close shells)
        (BCC, {"cutoff": 1.2 * A}, 0.036, 0.511),
    ],
)
def test_perfect_crystals(crystal, kwargs, q4, q6):
    R, box = crystal
    res = observables.steinhardt(R, box, **kwargs)
    np.testing.assert_allclose(res.mean, [q4, q6], atol=1e-3)
    np.testing.assert_allclose(res.q, np.broadcast_to(res.mean, res.q.shape), atol=1e-12)


def test_closed_forms():
    # From the addition theorem q_l^2 = sum_jk P_l(u_j . u_k) / n^2: FCC (12 nn)
    # q4^2 = 7/192, q6^2 = 169/512; cube vertices (BCC, 8 nn) q4^2 = 7/27, q6^2 = 32/81.
    R, box = FCC
    np.testing.assert_allclose(
        observables.steinhardt(R, box, cutoff=0.85 * A).mean,
        [np.sqrt(7 / 192), np.sqrt(169 / 512)],
        rtol=1e-12,
    )
    R, box = BCC
    np.testing.assert_allclose(
        observables.steinhardt(R, box, n_neighbors=8).mean,
        [np.sqrt(7 / 27), np.sqrt(32 / 81)],
        rtol=1e-12,
    )


def test_real_spherical_harmonics_satisfy_the_addition_theorem():
    u = np.random.default_rng(0).normal(size=(5, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    for l in (0, 1, 4, 6, 8):
        Y = np.asarray(_harmonics(jnp.asarray(u), l))
        # sum_m Y_lm(u) Y_lm(v) = (2l + 1) / (4 pi) P_l(u . v), for real or complex Y
        P = legendre.legval(u @ u.T, np.eye(l + 1)[l])
        np.testing.assert_allclose(Y @ Y.T, (2 * l + 1) / (4 * np.pi) * P, atol=1e-12)


def _switch(r, r_on, r_off):
    x = np.clip((r - r_on) / (r_off - r_on), 0, 1)
    return 0.5 + 0.5 * np.cos(np.pi * x)


def reference_q(R, L, r_on, r_off, l):
    """q_l and q̄_l by the addition theorem, without spherical harmonics (loops)."""
    n = len(R)
    d = R[None, :] - R[:, None]
    d -= L * np.round(d / L)
    r = np.linalg.norm(d, axis=-1) + np.eye(n) * 1e9
    w = _switch(r, r_on, r_off) * (r < r_off)
    u = d / r[..., None]
    P = lambda x: legendre.legval(x, np.eye(l + 1)[l])
    # C[i, j] = 4 pi / (2l + 1) q_lm(i) . q_lm(j)
    C = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            C[i, j] = w[i] @ P(u[i] @ u[j].T) @ w[j] / (w[i].sum() * w[j].sum())
    q = np.sqrt(np.diag(C))
    wt = w + np.eye(n)  # the particle itself, weight 1
    qbar = np.sqrt(np.einsum("ij,ik,jk->i", wt, wt, C) / wt.sum(1) ** 2)
    return q, qbar


@pytest.fixture(scope="module")
def liquid():
    return np.random.default_rng(3).uniform(0.0, 1.2, size=(20, 3)), 1.2


@pytest.mark.parametrize("average", [False, True])
def test_random_configuration_with_switch_matches_addition_theorem(liquid, average):
    R, L = liquid
    res = observables.steinhardt(R, L, cutoff=0.5, r_switch=0.4, max_neighbors=19, average=average)
    for column, l in enumerate((4, 6)):
        q, qbar = reference_q(R, L, 0.4, 0.5, l)
        np.testing.assert_allclose(res.q[:, column], qbar if average else q, rtol=1e-10)


def test_trajectory_float32_and_averaged_q_of_a_perfect_crystal():
    # Every FCC site sees the same q_lm, so the Lechner-Dellago average is q itself.
    R, box = FCC
    traj = np.stack([R, R + 0.05]).astype(np.float32)
    res = observables.steinhardt(traj, box, cutoff=0.85 * A, average=True)
    assert res.q.shape == (2, len(R), 2) and res.mean.shape == (2, 2)
    assert res.q.dtype == jnp.float32
    np.testing.assert_allclose(res.q, np.broadcast_to([0.190941, 0.574524], res.q.shape), atol=1e-5)


def test_errors():
    R, box = FCC
    with pytest.raises(ValueError, match="max_neighbors"):
        observables.steinhardt(R, box, cutoff=0.85 * A, max_neighbors=8)
    with pytest.raises(ValueError, match="exactly one"):
        observables.steinhardt(R, box, cutoff=0.3, n_neighbors=12)
    with pytest.raises(ValueError, match="cutoff"):
        observables.steinhardt(R, box, cutoff=0.5)  # half the box is 0.4 nm
    bad = R.copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="positions"):
        observables.steinhardt(bad, box, cutoff=0.3)
