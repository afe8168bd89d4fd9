"""The frozen training state, the trainer triple and the divergence error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from cgjax._types import Params

__all__ = ["TrainState", "Trainer", "TrainingDiverged", "as_raw_key", "record_validation"]


class TrainingDiverged(ValueError):
    """The loss (or the parameters) became NaN or inf.

    Attributes:
      step: the update at which it happened (1-based: the ``step``-th update).
    """

    def __init__(self, message: str, *, step: int):
        super().__init__(message)
        self.step = int(step)


@flax.struct.dataclass
class TrainState:
    """Everything a trainer carries between updates; replace fields with ``.replace``.

    Attributes:
      step: number of updates done (int32 scalar; ``[K]`` for ensembles).
      params: the model parameters.
      opt_state: the optax state.
      rng: raw ``uint32[2]`` PRNG key the trainer was started from.
      best_val: lowest validation loss seen (``inf`` before the first evaluation).
      best_params: parameters at ``best_val``.
      bad_epochs: evaluations since ``best_val`` last improved.
    """

    step: jax.Array
    params: Params
    opt_state: Any
    rng: jax.Array
    best_val: jax.Array
    best_params: Params
    bad_epochs: jax.Array


class Trainer(NamedTuple):
    """An ``(init, update)`` pair plus evaluation, as every cgjax trainer is.

    Attributes:
      init_fn: ``init_fn(key, params) -> TrainState``.
      update_fn: ``update_fn(state, batch) -> (state, metrics)`` (jitted);
        ``metrics`` holds at least ``loss`` and ``finite`` (False when the loss,
        gradients or new parameters are NaN/inf).
      eval_fn: ``eval_fn(params, batch) -> metrics`` (jitted) with ``loss``,
        ``sse`` (sum of squared force errors), ``sae`` (sum of absolute errors)
        and ``count`` (number of force components), so batches can be pooled.
      batch_size: frames per update.
      n_members: ``None`` for one model, ``K`` for a vmapped ensemble.
      member_batches: True when an ensemble takes one batch per member
        (leading ``[K]`` axis, e.g. K-fold splits) in updates (and evaluations,
        unless ``member_val_batches`` says otherwise).
      member_val_batches: True when an ensemble's evaluations take one batch
        per member, False when its members share one; ``None``: as
        ``member_batches``.
      reallocate: ``None``, or ``reallocate(positions) -> Trainer`` for a
        trainer with a neighbor list: the same trainer with a list wide
        enough for ``positions`` ``[..., N, 3]`` and at least 25 % more
        capacity. :func:`cgjax.train.fit` calls it when an update or an
        evaluation overflows, then reruns that update (pairs are never dropped).
      neighbor: the neighbor list the trainer rebuilds per frame (``None``:
        all pairs).
    """

    init_fn: Callable[..., TrainState]
    update_fn: Callable[..., tuple[TrainState, dict]]
    eval_fn: Callable[..., dict]
    batch_size: int
    n_members: int | None = None
    member_batches: bool = False
    member_val_batches: bool | None = None
    reallocate: Callable[..., Any] | None = None
    neighbor: Any = None


def as_raw_key(key: Any) -> jax.Array:
    """A raw ``uint32[..., 2]`` key from a typed or raw key (orbax stores raw keys)."""
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def new_state(key: Any, params: Params, opt_state: Any) -> TrainState:
    """The state before the first update."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=opt_state,
        rng=as_raw_key(key),
        best_val=jnp.asarray(jnp.inf, jnp.float32),
        best_params=params,
        bad_epochs=jnp.zeros((), jnp.int32),
    )


def record_validation(state: TrainState, val_loss: Any) -> TrainState:
    """Early-stopping bookkeeping after one evaluation (elementwise for ensembles).

    Where ``val_loss < best_val`` the current parameters become the best and
    ``bad_epochs`` resets; elsewhere ``bad_epochs`` grows by one.
    """
    val = jnp.asarray(val_loss, state.best_val.dtype)
    improved = val < state.best_val

    def pick(p, b):
        cond = jnp.reshape(improved, improved.shape + (1,) * (p.ndim - improved.ndim))
        return jnp.where(cond, p, b)

    return state.replace(
        best_val=jnp.where(improved, val, state.best_val),
        best_params=jax.tree.map(pick, state.params, state.best_params),
        bad_epochs=jnp.where(improved, 0, state.bad_epochs + 1).astype(jnp.int32),
    )
