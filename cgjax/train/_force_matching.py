"""The force-matching trainer: an ``(init, update)`` pair over :class:`TrainState`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from cgjax._neighbor_list import grow_neighbor_list
from cgjax._types import Params
from cgjax._xla import jit
from cgjax.losses import Loss, force_matching_loss, force_mse, predict_forces
from cgjax.train._state import Trainer, TrainState, new_state

__all__ = ["force_matching", "tree_all_finite"]


def _freeze(
    optimizer: optax.GradientTransformation, frozen: tuple[str, ...]
) -> optax.GradientTransformation:
    """``optimizer`` on every top-level subtree except ``frozen`` (zero updates there)."""

    def labels(params: Any) -> Any:
        return {
            k: jax.tree.map(lambda _, label="frozen" if k in frozen else "train": label, v)
            for k, v in params.items()
        }

    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


def tree_all_finite(tree: Any) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite (a traced bool)."""
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def force_matching(
    model: Any,
    optimizer: optax.GradientTransformation,
    *,
    batch_size: int,
    loss: Loss | None = None,
    error_fn: Any = force_mse,
    neighbor: Any = None,
    frozen: Sequence[str] = (),
) -> Trainer:
    """A force-matching trainer for an energy model.

    Forces are ``-grad(energy)`` per frame, vmapped over the batch; the update
    and the evaluation are each jitted once (batches have a fixed shape
    ``[batch_size, N, 3]``; :func:`cgjax.train.fit` pads the last evaluation
    batch with a mask).

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel`. All pairs are
        enumerated (no neighbor list), so keep ``N`` moderate.
      optimizer: an optax transformation (e.g. ``optax.adam(1e-3)``).
      batch_size: frames per update.
      loss: the training loss ``loss(params, batch) -> scalar``; default
        ``force_matching_loss(model, error_fn=error_fn)``.
      error_fn: force error used by the default loss (``force_mse``,
        ``force_rmse_mae``).
      neighbor: ``None`` (all pairs), or a neighbor list from
        :func:`cgjax.allocate_neighbor_list`, rebuilt for every frame of every batch
        with its fixed capacity. An overflow sets ``metrics["overflow"]``;
        :func:`cgjax.train.fit` then takes ``trainer.reallocate(positions)``
        (a wider list, :func:`cgjax.grow_neighbor_list`) and reruns the update, so
        pairs are never dropped.
      frozen: names of terms whose parameters stay fixed (top-level keys of
        the parameter tree, e.g. ``("prior",)`` for
        ``sum_of(prior=prior.term, nn=DeepPotSE())``): the model learns a
        correction on top of a prior fitted from data (papers 001, 003).

    Returns:
      a :class:`Trainer`. Batches are dicts with ``positions`` ``[B, N, 3]``
      (nm), ``forces`` ``[B, N, 3]`` (kJ/mol/nm), optional ``mask`` ``[B, N]``
      and ``box`` ``[B, 3, 3]``. The neighbor lists are added inside jit.

    References:
      Paper 002 eq. (9) (instantaneous force matching, Adam, small batches);
      paper 001 §II.
    """
    base_optimizer = optimizer
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of frames, got {batch_size}")
    loss = force_matching_loss(model, error_fn=error_fn) if loss is None else loss
    frozen = tuple(frozen)
    if frozen:
        optimizer = _freeze(optimizer, frozen)

    def init_fn(key: Any, params: Params) -> TrainState:
        missing = sorted(set(frozen) - set(params))
        if missing:
            raise ValueError(
                f"frozen terms {missing} are not in the parameters; their top-level "
                f"names are {sorted(params)}"
            )
        return new_state(key, params, optimizer.init(params))

    def with_neighbors(batch: dict) -> tuple[dict, jax.Array]:
        if neighbor is None:
            return batch, jnp.asarray(False)
        nbrs = jax.vmap(lambda R: neighbor.update(R))(batch["positions"])
        return dict(batch, neighbor=nbrs), jnp.any(nbrs.did_buffer_overflow)

    @jit
    def update_fn(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        batch, overflow = with_neighbors(batch)
        value, grads = jax.value_and_grad(loss)(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(value) & tree_all_finite(grads) & tree_all_finite(params)
        metrics = {
            "loss": value,
            "grad_norm": optax.tree.norm(grads),
            "finite": finite,
            "overflow": overflow,
        }
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    @jit
    def eval_fn(params: Params, batch: dict) -> dict:
        batch, overflow = with_neighbors(batch)
        pred = predict_forces(model, params, batch["positions"], box=batch.get("box"),
                              neighbor=batch.get("neighbor"), state=batch.get("state"))  # fmt: skip
        diff = pred - batch["forces"]
        mask = batch.get("mask")
        w = (
            jnp.ones(diff.shape, diff.dtype)
            if mask is None
            else mask[..., None] * jnp.ones_like(diff)
        )
        return {
            "sse": jnp.sum(w * diff**2),
            "sae": jnp.sum(w * jnp.abs(diff)),
            "count": jnp.sum(w),
            "overflow": overflow.astype(jnp.int32),
        }

    def reallocate(positions: Any) -> Trainer:
        wider = grow_neighbor_list(model, neighbor, positions)
        return force_matching(
            model, base_optimizer, batch_size=batch_size, loss=loss, error_fn=error_fn,
            neighbor=wider, frozen=frozen,
        )  # fmt: skip

    return Trainer(
        init_fn=init_fn,
        update_fn=update_fn,
        eval_fn=eval_fn,
        batch_size=batch_size,
        reallocate=None if neighbor is None else reallocate,
        neighbor=neighbor,
    )
