"""cgjax's XLA options: the CPU dots leave YNNPACK, results stay the same to round-off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import _xla

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU options")


def _mlp(x, w1, w2):
    return jnp.sum(jnp.tanh(x @ w1) @ w2)


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(0)
    return tuple(
        jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((4096, 20), (20, 16), (16, 16))
    )


def test_options_on_cpu(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert _xla.compiler_options() == {"xla_cpu_experimental_ynn_fusion_type": ""}


def test_user_xla_flags_take_precedence(monkeypatch):
    monkeypatch.setenv(
        "XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"
    )
    assert _xla.compiler_options() is None


def test_dots_leave_ynnpack_and_agree(monkeypatch, args):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    f = jax.value_and_grad(_mlp, argnums=(0, 1))
    plain = jax.jit(f).lower(*args).compile()
    ours = _xla.jit(f).lower(*args).compile()
    # jax 0.10.1 fuses these dots into YNNPACK by default; cgjax's compile does not
    assert "ynn_fusion" in plain.as_text()
    assert "ynn_fusion" not in ours.as_text()
    (e0, (gx0, gw0)), (e1, (gx1, gw1)) = plain(*args), ours(*args)
    # the same arithmetic in another summation order: float32 round-off
    np.testing.assert_allclose(e1, e0, rtol=2e-6)
    for a, b in ((gx1, gx0), (gw1, gw0)):
        assert float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) < 1e-6


def test_nested_calls_compile_as_part_of_the_caller(monkeypatch, args):
    # compiler options are only allowed on a top-level jit: inside jit, vmap or
    # grad the function must trace as plain jax.jit (it raised before)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    f = _xla.jit(_mlp)
    x, w1, w2 = args
    top = f(x, w1, w2)
    np.testing.assert_allclose(jax.jit(f)(x, w1, w2), top, rtol=2e-6)
    batched = jax.vmap(f, in_axes=(0, None, None))(x[None], w1, w2)
    np.testing.assert_allclose(batched[0], top, rtol=2e-6)
    g = jax.grad(f, argnums=1)(x, w1, w2)
    np.testing.assert_allclose(g, jax.grad(_mlp, argnums=1)(x, w1, w2), rtol=1e-4, atol=1e-3)
    # the top-level compile keeps the options
    assert "ynn_fusion" not in f.lower(x, w1, w2).compile().as_text()
