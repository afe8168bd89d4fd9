import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.interpolate import BSpline

from cgjax import potentials, testing
from cgjax.potentials._spline import default_config

K, R_MIN, CUTOFF = 12, 0.2, 0.6
H = (CUTOFF - R_MIN) / K  # knot spacing (nm)


def random_coefficients(seed=0, n_species=2):
    c = np.random.default_rng(seed).normal(size=(n_species, n_species, K))
    return c + c.transpose(1, 0, 2)  # symmetric, kJ/mol


@pytest.fixture(scope="module")
def spline():
    return potentials.SplinePair(n_species=2, n_basis=K, r_min=R_MIN, cutoff=CUTOFF)


def basis(r):
    return potentials.cubic_bspline_basis(r, n_basis=K, r_min=R_MIN, cutoff=CUTOFF)


def test_contract(spline, system2):
    R, species, box = system2
    params = {"coefficients": jnp.asarray(random_coefficients())}
    report = testing.check_potential(spline, positions=R, species=species, box=box, params=params)
    assert report["forces_fd"] < 1e-6


def test_basis_matches_scipy():
    # scipy's order-3 BSpline on the knots r_min + (j - 3) h; three phantom
    # functions past the cutoff give it a base interval reaching the cutoff.
    knots = R_MIN + (np.arange(K + 7) - 3) * H
    r = np.linspace(R_MIN, CUTOFF, 2001)[:-1]
    ref = BSpline.design_matrix(r, knots, 3).toarray()[:, :K]
    np.testing.assert_allclose(basis(jnp.asarray(r)), ref, rtol=0, atol=1e-12)
    # spline.basis is the same function
    m = potentials.SplinePair(n_basis=K, r_min=R_MIN, cutoff=CUTOFF)
    np.testing.assert_array_equal(m.basis(jnp.asarray(r)), basis(jnp.asarray(r)))


def u_du_d2u(term, params, a=0, b=0):
    """Jitted ``r [M] -> (U, U', U'')`` of one species pair (kJ/mol, nm)."""
    u = lambda x: term.pair_energy(params, x, a, b)
    one = lambda x: (u(x), jax.grad(u)(x), jax.grad(jax.grad(u))(x))
    return jax.jit(jax.vmap(one))


def test_partition_of_unity_and_exact_cubic():
    # On [r_min, cutoff - 3h] all four local functions are present.
    r = jnp.linspace(R_MIN, CUTOFF - 3 * H, 997)
    np.testing.assert_allclose(jnp.sum(basis(r), -1), 1.0, rtol=0, atol=1e-14)
    # Cubic B-splines reproduce cubics there with c_k = p(t_k) - h^2/6 p''(t_k),
    # t_k = r_min + (k - 1) h the centre of B_k's support.
    p = np.polynomial.Polynomial([3.0, -40.0, 90.0, -50.0])  # kJ/mol, r in nm
    t = R_MIN + (np.arange(K) - 1) * H
    c = p(t) - H**2 / 6 * p.deriv(2)(t)
    m = potentials.SplinePair(n_species=1, n_basis=K, r_min=R_MIN, cutoff=CUTOFF)
    u, du, d2u = u_du_d2u(m, {"coefficients": jnp.asarray(c)[None, None]})(r)
    x = np.asarray(r)
    np.testing.assert_allclose(u, p(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(du, p.deriv()(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(d2u, p.deriv(2)(x), rtol=0, atol=1e-8)
    # Exactly at the knots (binary-exact spacing 1/32 nm, so x hits the piece
    # boundaries exactly), where autodiff of a piecewise form is most fragile.
    h, r_min = 1.0 / 32.0, 0.25
    m = potentials.SplinePair(n_species=1, n_basis=K, r_min=r_min, cutoff=r_min + K * h)
    t = r_min + (np.arange(K) - 1) * h
    c = p(t) - h**2 / 6 * p.deriv(2)(t)
    knots = r_min + h * np.arange(K - 2)
    u, du, d2u = u_du_d2u(m, {"coefficients": jnp.asarray(c)[None, None]})(jnp.asarray(knots))
    np.testing.assert_allclose(u, p(knots), rtol=0, atol=1e-12)
    np.testing.assert_allclose(du, p.deriv()(knots), rtol=0, atol=1e-10)
    np.testing.assert_allclose(d2u, p.deriv(2)(knots), rtol=0, atol=1e-8)


def test_vanishes_c2_at_cutoff(spline):
    c = random_coefficients(1)
    f = u_du_d2u(spline, {"coefficients": jnp.asarray(c)}, 0, 1)
    cmax = np.abs(c[0, 1]).max()
    eps = np.array([1e-2, 1e-4]) * H
    u, du, d2u = f(jnp.asarray(CUTOFF - eps))
    # Only B_{K-1} is non-zero, as (eps/h)^3 / 6: U ~ eps^3, U' ~ eps^2, U'' ~ eps.
    tol = 1 + 1e-9
    assert np.all(np.abs(u) <= cmax * (eps / H) ** 3 / 6 * tol)
    assert np.all(np.abs(du) <= cmax * (eps / H) ** 2 / (2 * H) * tol)
    assert np.all(np.abs(d2u) <= cmax * (eps / H) / H**2 * tol)
    assert abs(d2u[0]) > 0  # the bound is not met by a spline that is zero everywhere
    beyond = f(jnp.array([CUTOFF, CUTOFF + 1e-9, 0.9]))
    assert all(np.all(v == 0.0) for v in beyond)
    # no switching function: at the switch's default onset (0.9 rc) U is the bare spline
    x = jnp.array([0.55])
    np.testing.assert_allclose(f(x)[0], basis(x) @ c[0, 1], rtol=1e-14)


def test_linear_extrapolation_below_r_min(spline):
    f = u_du_d2u(spline, {"coefficients": jnp.asarray(random_coefficients(2))}, 1, 1)
    (u0,), (du0,), (d2u0,) = f(jnp.array([R_MIN]))
    r = jnp.array([0.0, 0.05, 0.15, R_MIN - 1e-9])
    u, du, d2u = f(r)
    np.testing.assert_allclose(u, u0 + du0 * (r - R_MIN), rtol=1e-12, atol=1e-12)
    # C1 at r_min: constant slope to the left equals the spline's slope on the right
    np.testing.assert_allclose(du, du0, rtol=1e-12)
    np.testing.assert_array_equal(d2u, 0.0)
    assert abs(d2u0) > 0  # U'' jumps at r_min (C1, not C2), as documented


def test_energy_is_linear_in_coefficients(spline, system2):
    R, species, box = system2
    model = potentials.energy_model(spline, species=species, box=box)
    e = lambda c: model.energy_fn({"coefficients": c})(jnp.asarray(R))
    c1, c2 = jnp.asarray(random_coefficients(3)), jnp.asarray(random_coefficients(4))
    e1, e2 = e(c1), e(c2)
    assert abs(e1) > 1.0  # the test system has pairs inside the range
    np.testing.assert_allclose(e(c1 + c2), e1 + e2, rtol=1e-12)
    np.testing.assert_allclose(e(-2.5 * c1), -2.5 * e1, rtol=1e-12)
    # the design row dE/dc is what least-squares force matching uses: E = <dE/dc, c>
    np.testing.assert_allclose(jnp.sum(jax.grad(e)(c1) * c1), e1, rtol=1e-12)


def test_init_and_config():
    m = potentials.SplinePair(**default_config())
    assert set(default_config()) <= set(m.__dataclass_fields__)
    R = jnp.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    model = potentials.energy_model(m, species=np.zeros(2, np.int32))
    params = model.init_fn(jax.random.key(0), R)
    assert params["coefficients"].shape == (1, 1, 24)
    assert params["coefficients"].dtype == jnp.float32
    per_pair = potentials.SplinePair(
        n_species=2, n_basis=K, coefficients=np.arange(K), cutoff=CUTOFF
    )
    model = potentials.energy_model(per_pair, species=np.array([0, 1]))
    c = model.init_fn(jax.random.key(0), R)["coefficients"]
    np.testing.assert_array_equal(c, np.broadcast_to(np.arange(K), (2, 2, K)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(r_onset=0.5), "r_onset"),
        (dict(r_min=0.7), "r_min < cutoff"),
        (dict(n_basis=0), "n_basis"),
        (dict(coefficients=np.zeros(K + 1)), "coefficients must be"),
        (dict(coefficients=np.arange(2 * 2 * K).reshape(2, 2, K)), "symmetric"),
    ],
)
def test_invalid_settings_raise(kwargs, match):
    m = potentials.SplinePair(**{**dict(n_species=2, n_basis=K, cutoff=CUTOFF), **kwargs})
    model = potentials.energy_model(m, species=np.array([0, 1]))
    with pytest.raises(ValueError, match=match):
        model.init_fn(jax.random.key(0), jnp.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]]))
