"""XLA compiler options for cgjax's compiled MD and training steps.

On a CPU backend, jax 0.10.1's XLA hands every dot to YNNPACK (``ynn_fusion``
thunks). cgjax's models multiply many small matrices (``[E, 20] x [20, 16]`` per
pair for paper 004's GNN, forward and backward): YNNPACK ran these ~2.4x slower
than XLA's own dot emitter in an op-level trace (1.95 against 0.81 ms of CPU
time per force call), and the paper-004 force (GNN + LJ + HF, 512 beads) took
1.96 ms against 2.28 ms with it (NequIP 64 against 91 ms, Allegro 11.3 against
13.0; SchNet, DeepPot-SE and HIP-NN within noise). ``benchmarks/cg_vs_aa.py``:
CG/AA 1.28 and 1.19 without it, 1.11 and 1.08 with it, alternating. Results agree
to float32 round-off (forces 6e-8 relative: only the summation order of the dots
changes).

:func:`jit` is ``jax.jit`` with these options; the runner, the differentiable
sampler and the trainers compile through it. Setting
``--xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS`` yourself (e.g. to
``LIBRARY_FUSION_TYPE_DOT`` to put YNNPACK back) takes precedence.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax._src import core as _core  # trace_state_clean: no public equivalent in jax 0.10

__all__ = ["compiler_options", "jit"]

_YNN = "xla_cpu_experimental_ynn_fusion_type"
#: CPU only: no YNNPACK fusions (an empty list of fusion types).
_CPU_OPTIONS = {_YNN: ""}


@functools.cache
def _accepted() -> bool:
    """True when this jaxlib's CPU compiler knows the options (a tiny compile, once)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(jnp.zeros(2)).compile()
    except Exception:  # an unknown option in another jaxlib: compile as jax would
        return False
    return True


def compiler_options() -> dict[str, Any] | None:
    """The options :func:`jit` passes to XLA: CPU ones on a CPU backend, else ``None``.

    ``None`` as well when ``XLA_FLAGS`` already sets the YNNPACK fusion types
    (the user's choice wins) or when this jaxlib does not know the option.
    """
    if jax.default_backend() != "cpu" or _YNN in os.environ.get("XLA_FLAGS", ""):
        return None
    return dict(_CPU_OPTIONS) if _accepted() else None


def jit(fn: Callable, **kwargs: Any) -> Callable:
    """``jax.jit(fn, **kwargs)`` with :func:`compiler_options` (decided when ``jit`` is called).

    XLA takes compiler options only for a top-level compile. Called inside a
    trace (an outer ``jit``, ``grad`` or ``vmap``, e.g. a trainer's ``update_fn``
    vmapped by :func:`~cgjax.train.ensemble`), the function becomes part of the
    caller's computation and is traced as plain ``jax.jit(fn)``; the caller's own
    compile decides the options then. ``.lower`` lowers the top-level version.
    """
    plain = jax.jit(fn, **kwargs)
    options = compiler_options()
    if options is None:
        return plain
    return _Jitted(fn, jax.jit(fn, compiler_options=options, **kwargs), plain)


class _Jitted:
    """A function jitted twice: with the options at top level, without inside a trace.

    Other attributes (``lower``, ``trace``, ``eval_shape``) are the top-level
    version's; ``_cache_size`` counts the compiles of both.
    """

    def __init__(self, fn: Callable, top: Any, plain: Any):
        functools.update_wrapper(self, fn)
        self._top, self._plain = top, plain

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (self._top if _core.trace_state_clean() else self._plain)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._top, name)

    def _cache_size(self) -> int:
        return self._top._cache_size() + self._plain._cache_size()
