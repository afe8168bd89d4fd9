"""The shared activation: softplus (and its log1p) against float64 references."""

import jax
import jax.numpy as jnp
import numpy as np

from cgjax.potentials._nn import _log1p, shifted_softplus, softplus

# float32's unit round-off is 2^-24 = 6.0e-8; jnp.log1p itself is off by 2.1e-7 here
F32_REL = 2.5e-7


def test_log1p_float32_polynomial_is_round_off_accurate():
    y = np.linspace(0.0, 1.0, 200001)
    got = np.asarray(jax.jit(_log1p)(jnp.asarray(y, jnp.float32)), np.float64)
    y32 = np.asarray(jnp.asarray(y, jnp.float32), np.float64)  # the float32 inputs, exactly
    ref = np.log1p(y32)
    assert got[0] == 0.0
    rel = np.abs(got[1:] - ref[1:]) / ref[1:]
    assert rel.max() < F32_REL, rel.max()
    # and no worse than XLA's own float32 log1p on the same inputs
    xla = np.asarray(jnp.log1p(jnp.asarray(y, jnp.float32)), np.float64)
    assert rel.max() <= 1.2 * (np.abs(xla[1:] - ref[1:]) / ref[1:]).max()


def test_log1p_float64_keeps_double_precision():
    # the suite runs with jax_enable_x64 (tests/conftest.py)
    y = np.concatenate([[0.0, 1e-300, 1e-12], np.linspace(1e-6, 1.0, 10001)])
    got = np.asarray(_log1p(jnp.asarray(y, jnp.float64)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.log1p(y), rtol=4e-16, atol=0)


def test_softplus_float32_value_and_derivative():
    x = np.linspace(-40.0, 40.0, 40001)
    x32 = jnp.asarray(x, jnp.float32)
    xd = np.asarray(x32, np.float64)
    ref = np.logaddexp(0.0, xd)
    got = np.asarray(softplus(x32), np.float64)
    assert np.max(np.abs(got - ref) / ref) < F32_REL
    # the derivative is the logistic sigmoid (custom JVP)
    d = np.asarray(jax.vmap(jax.grad(softplus))(x32), np.float64)
    np.testing.assert_allclose(d, 1.0 / (1.0 + np.exp(-xd)), rtol=3e-7, atol=1e-30)
    # shifted: zero at 0, log 2 below softplus everywhere
    assert float(shifted_softplus(jnp.float32(0.0))) == 0.0
    np.testing.assert_allclose(
        np.asarray(shifted_softplus(x32), np.float64), ref - np.log(2.0), rtol=0, atol=5e-6
    )
