"""Ensembles: K members trained in one vmapped computation, model deviation, mean force.

References:
  Paper 001 §III (five cross-validated CGSchNet models; the mean force drives
  the simulation); paper 002 eq. (15) (model deviation).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax._types import EnergyFn, Params
from cgjax._xla import jit
from cgjax.train._state import Trainer, TrainState, as_raw_key

__all__ = [
    "ensemble",
    "ensemble_energy_fn",
    "init_ensemble_params",
    "kfold_indices",
    "member_keys",
    "model_deviation",
]


def member_keys(key: Any, n_members: int) -> jax.Array:
    """``[K, 2]`` raw keys; member ``k`` gets ``fold_in(key, k)``."""
    key = as_raw_key(key)
    return jnp.stack([jax.random.fold_in(key, k) for k in range(int(n_members))])


def init_ensemble_params(model: Any, key: Any, R: Any, n_members: int, **kwargs) -> Params:
    """Parameters of ``n_members`` models stacked on a leading axis ``[K, ...]``.

    Member ``k`` is ``model.init_fn(fold_in(key, k), R, **kwargs)``.
    """
    keys = member_keys(key, n_members)
    return jax.vmap(lambda k: model.init_fn(k, R, **kwargs))(keys)


def ensemble(
    trainer: Trainer,
    n_members: int,
    *,
    same_batches: bool = True,
    same_val_batches: bool | None = None,
) -> Trainer:
    """``n_members`` copies of ``trainer`` updated together by one jitted vmap.

    Args:
      trainer: a single-model :class:`Trainer` (e.g. from :func:`force_matching`).
      n_members: ensemble size ``K``.
      same_batches: ``True``: every member sees the same batch ``[B, N, 3]``
        (members differ only by their initialisation); ``False``: batches
        carry a leading member axis ``[K, B, N, 3]`` (e.g. K-fold splits from
        :func:`kfold_indices`).
      same_val_batches: the same for evaluations; ``None``: as
        ``same_batches``. ``same_batches=False, same_val_batches=True``: each
        member trains on its own batches (e.g. its own seed's order) and all
        validate on one set (a hyperparameter sweep).

    Returns:
      a :class:`Trainer` whose ``init_fn(key, stacked_params)`` gives a state
      with a leading ``[K]`` axis on every leaf (member ``k``'s rng is
      ``fold_in(key, k)``), whose metrics are ``[K]`` and whose ``eval_fn``
      takes stacked params and one shared batch (``same_batches``) or one
      batch per member. :func:`cgjax.train.fit` drives it with shared frames,
      or with lists of ``K`` train and validation sets (K-fold).
    """
    K = int(n_members)
    if K < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    batch_axis = None if same_batches else 0
    same_val = same_batches if same_val_batches is None else bool(same_val_batches)
    val_axis = None if same_val else 0

    def init_fn(key: Any, params: Params) -> TrainState:
        leading = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree.leaves(params)}
        if leading != {K}:
            raise ValueError(
                f"ensemble params must be stacked on a leading axis of size K = {K} "
                f"(see init_ensemble_params); got leading sizes {sorted(map(str, leading))}"
            )
        return jax.vmap(trainer.init_fn)(member_keys(key, K), params)

    def reallocate(positions: Any) -> Trainer:
        R = np.asarray(positions)
        return ensemble(trainer.reallocate(R.reshape((-1,) + R.shape[-2:])), K,
                        same_batches=same_batches, same_val_batches=same_val)  # fmt: skip

    update_fn = jit(jax.vmap(trainer.update_fn, in_axes=(0, batch_axis)))
    eval_fn = jit(jax.vmap(trainer.eval_fn, in_axes=(0, val_axis)))
    return Trainer(
        init_fn=init_fn,
        update_fn=update_fn,
        eval_fn=eval_fn,
        batch_size=trainer.batch_size,
        n_members=K,
        member_batches=not same_batches,
        member_val_batches=not same_val,
        reallocate=None if trainer.reallocate is None else reallocate,
        neighbor=trainer.neighbor,
    )


def kfold_indices(
    n_frames: int, n_folds: int, *, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold ``(train_idx, val_idx)`` over contiguous blocks of frames.

    The frames are cut into ``n_folds`` contiguous blocks (neighbouring MD
    frames are correlated) dealt in a shuffled order; fold ``k`` validates on
    block ``k`` and trains on the rest.
    """
    n_frames, n_folds = int(n_frames), int(n_folds)
    if not 2 <= n_folds <= n_frames:
        raise ValueError(f"n_folds must be between 2 and n_frames = {n_frames}, got {n_folds}")
    blocks = np.array_split(np.arange(n_frames), n_folds)
    order = np.random.default_rng(seed).permutation(n_folds)
    blocks = [blocks[i] for i in order]
    return [
        (np.sort(np.concatenate([b for j, b in enumerate(blocks) if j != k])), np.sort(blocks[k]))
        for k in range(n_folds)
    ]


def model_deviation(
    forces_k: Float[Array, "K N 3"], *, reduce: str | None = None
) -> Float[Array, " N"] | Float[Array, ""]:
    """Model deviation of an ensemble's forces, paper 002 eq. (15).

    ``Sigma_i = sqrt(< |F_i^w - <F_i^w>_w|^2 >_w)``: the standard deviation over
    members of the force on bead ``i`` (kJ/mol/nm).

    Args:
      forces_k: ``[K, N, 3]`` forces of ``K`` members (kJ/mol/nm).
      reduce: ``None`` (per bead ``[N]``), ``"max"`` or ``"mean"`` over beads.

    References:
      Paper 002 eq. (15).
    """
    F = jnp.asarray(forces_k)
    if F.ndim != 3 or F.shape[-1] != 3:
        raise ValueError(f"forces_k must have shape [K, N, 3] (kJ/mol/nm), got {F.shape}")
    dev = F - jnp.mean(F, axis=0)
    sigma = jnp.sqrt(jnp.mean(jnp.sum(dev**2, axis=-1), axis=0))
    if reduce is None:
        return sigma
    if reduce == "max":
        return jnp.max(sigma)
    if reduce == "mean":
        return jnp.mean(sigma)
    raise ValueError(f"reduce must be None, 'max' or 'mean', got {reduce!r}")


def ensemble_energy_fn(model: Any, stacked_params: Params) -> EnergyFn:
    """The mean of the members' energies (kJ/mol); its gradient is the mean force.

    Args:
      model: the members' :class:`~cgjax.potentials.EnergyModel`.
      stacked_params: ``[K, ...]`` parameters.

    Returns:
      ``E(R, *, neighbor=None, box=None, **kw) -> scalar``, usable by the
      simulators like any energy function.

    References:
      Paper 001 §III (simulations driven by the ensemble's mean force).
    """

    def energy(R: jax.Array, **kwargs) -> jax.Array:
        per_member = jax.vmap(lambda p: model.energy_fn(p)(R, **kwargs))(stacked_params)
        return jnp.mean(per_member)

    return energy
