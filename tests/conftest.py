"""Test-suite setup: float64 is available (tests of gradients and conservation use it).

Compiled programs are freed after each test module. The whole suite runs in one
process and compiles several hundred XLA programs (the experiment smokes alone
compile GNN simulations, trainers and adjoints); kept to the end, they made
XLA's compiler segfault about 70 % of the way through on clean CI clones
(at different tests each time), which freeing them per module avoids.
"""

import gc

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    yield
    jax.clear_caches()
    from cgjax.simulate import _differentiable, _runner

    _runner._CHUNK_CACHE.clear()
    _differentiable._SEGMENT_CACHE.clear()
    gc.collect()
