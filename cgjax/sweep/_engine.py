"""A group of force-matching configs trained together: one jitted vmap, members sharded.

The members differ only in traced values (seed, learning rate, final lr
fraction, clip norm); each member's initialisation and batch order depend on its
own seed alone, so a member ends where it would end trained alone with
:func:`cgjax.train.force_matching` and :func:`cgjax.train.fit` (float rounding
aside) whatever other members share its group.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cgjax import train
from cgjax.config import flatten

__all__ = ["TRACED_KEYS", "SweepResult", "member_mesh", "sweep_force_matching", "sweep_optimizer"]

#: Keys that may differ between the members of one :func:`sweep_force_matching` call.
TRACED_KEYS = ("seed", "train.lr", "train.lr_final_fraction", "train.clip_norm")


class SweepResult(NamedTuple):
    """What :func:`sweep_force_matching` returns.

    Attributes:
      members: one dict per config, in order: ``seed``, ``lr``,
        ``lr_final_fraction``, ``clip_norm``, ``val_force_rmse`` and
        ``val_force_mae`` (kJ/mol/nm, final parameters), ``train_loss`` (one
        float per update, (kJ/mol/nm)^2), ``val_curve`` (``[step, rmse]``
        pairs every ``eval_every`` updates), ``diverged_at_step`` (first
        update with a non-finite loss or parameters, else ``None``) and
        ``params`` (final parameters as numpy arrays).
      n_devices: devices of the member mesh.
      member_sharding: the sharding of the members' parameters (a string).
      n_padded: members added to fill the mesh (dropped from ``members``).
      first_step_s: wall time of the first update (includes compilation).
      train_s: wall time of the other ``n_steps - 1`` updates (batches
        gathered and moved, updates, losses fetched; no compilation, no
        evaluation).
      wall_s: wall time of the whole group (initialisation, compilation,
        training, evaluation).
    """

    members: list[dict]
    n_devices: int
    member_sharding: str
    n_padded: int
    first_step_s: float
    train_s: float
    wall_s: float


def sweep_optimizer(n_steps: int, *, clip: bool) -> optax.GradientTransformation:
    """Adam with cosine decay (as :meth:`cgjax.train.FMSettings.optimizer`), lr traced.

    ``lr``, ``lr_final_fraction`` and ``clip_norm`` live in the optimizer state
    (``optax.inject_hyperparams``), so each member of a vmapped sweep carries
    its own; set them in ``opt_state.hyperparams`` after ``init``.

    Args:
      n_steps: updates of the cosine decay from ``lr`` to
        ``lr * lr_final_fraction`` (static: it sets the schedule).
      clip: chain ``clip_by_global_norm(clip_norm)`` before Adam.
    """

    def make(lr, lr_final_fraction, n_steps, clip_norm=None):
        adam = optax.adam(optax.cosine_decay_schedule(lr, n_steps, alpha=lr_final_fraction))
        if clip_norm is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(clip_norm), adam)

    return optax.inject_hyperparams(make, static_args=("n_steps",))(
        lr=1.0, lr_final_fraction=0.01, n_steps=int(n_steps), clip_norm=1.0 if clip else None
    )


def member_mesh(devices: Any = None) -> Mesh:
    """A 1-D mesh with axis ``"member"`` over ``devices`` (default: this process's devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("member",))


def _check_group(configs: list[ml_collections.ConfigDict]) -> None:
    flat = [flatten(c) for c in configs]
    for name in ("seed", "train.lr", "train.n_steps", "train.batch_size"):
        if name not in flat[0]:
            raise KeyError(f"sweep configs need {name!r}; config 0 has {sorted(flat[0])}")
    for i, f in enumerate(flat[1:], 1):
        if set(f) != set(flat[0]):
            raise ValueError(
                f"config {i} has other keys than config 0: {sorted(set(f) ^ set(flat[0]))}"
            )
        for k, v in f.items():
            if k in TRACED_KEYS and (v is None) == (flat[0][k] is None):
                continue
            if repr(v) != repr(flat[0][k]):
                raise ValueError(
                    f"configs 0 and {i} differ in {k!r} ({flat[0][k]!r} vs {v!r}), which "
                    f"cannot be traced; only {list(TRACED_KEYS)} may differ within a group "
                    "(see group_by_structure)"
                )


def _put(tree: Any, sharding: NamedSharding) -> Any:
    return jax.device_put(tree, sharding)


def _init_members(model, single, tr, seeds, hyper, neighbor) -> train.TrainState:
    """Member ``k``: ``model.init_fn(key(seed_k), R0)``, its hyperparameters in ``opt_state``."""
    R0 = jnp.asarray(tr["positions"][0])
    init_kw = {} if neighbor is None else {"neighbor": neighbor}

    def init_member(seed, hp):
        key = jax.random.key(seed)
        state = single.init_fn(key, model.init_fn(key, R0, **init_kw))
        opt = state.opt_state
        hp = {k: jnp.asarray(v, opt.hyperparams[k].dtype) for k, v in hp.items()}
        return state.replace(opt_state=opt._replace(hyperparams={**opt.hyperparams, **hp}))

    hp_arrays = {k: np.asarray(v) for k, v in hyper.items()}
    return jax.jit(jax.vmap(init_member))(np.asarray(seeds, np.uint32), hp_arrays)


def _member_records(params, K, seeds, hyper, losses, val_curve, finite_until, keep_params):
    """The first ``K`` members' dicts of :attr:`SweepResult.members`."""
    last = val_curve[-1][1]
    return [
        {
            "seed": seeds[k],
            **{name: v[k] for name, v in hyper.items()},
            "val_force_rmse": float(last["rmse"][k]),
            "val_force_mae": float(last["mae"][k]),
            "train_loss": losses[k].tolist(),
            "val_curve": [[s, float(e["rmse"][k])] for s, e in val_curve],
            "diverged_at_step": int(finite_until[k]) if finite_until[k] > 0 else None,
            **({"params": jax.tree.map(lambda x, k=k: x[k], params)} if keep_params else {}),
        }
        for k in range(K)
    ]


def sweep_force_matching(
    model: Any,
    train_frames: Any,
    val_frames: Any,
    configs: list[ml_collections.ConfigDict],
    *,
    neighbor: Any = None,
    mesh: Mesh | None = None,
    keep_params: bool = True,
) -> SweepResult:
    """Trains one structural group of force-matching configs as one vmapped computation.

    Member ``k`` is initialised with ``model.init_fn(key(seed_k), R0)``, takes
    the batch of update ``s`` from
    ``minibatch_indices(seed_k, s, n_train, batch_size)`` and uses Adam with
    a cosine decay from its own ``lr`` to ``lr * lr_final_fraction`` over
    ``n_steps`` (clipped at ``clip_norm`` when set), the optimizer of
    :func:`cgjax.train.fit_force_matching`. All members are updated by one
    ``jax.jit(jax.vmap(update))`` whose member axis is sharded over ``mesh``
    (``NamedSharding(mesh, P("member"))``); the member count is padded to a
    multiple of the mesh size with copies of member 0, dropped afterwards.
    A member that diverges (NaN/inf) is reported, not fatal: the others go on.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel`.
      train_frames, val_frames: :class:`~cgjax.data.Frames` or dicts with
        ``positions``/``forces`` ``[T, N, 3]`` (nm, kJ/mol/nm).
      configs: configs of one group (:func:`group_by_structure`), each with
        ``seed`` and ``train.{lr, n_steps, batch_size}``, optional
        ``train.{lr_final_fraction (0.01), clip_norm (None), eval_every}``.
        Only :data:`TRACED_KEYS` may differ between them.
      neighbor: ``None`` (all pairs) or a list from
        :func:`cgjax.allocate_neighbor_list` over train and validation
        frames; widened and the update rerun when it overflows.
      mesh: a mesh with a ``"member"`` axis; default :func:`member_mesh`.
      keep_params: return every member's final parameters.

    Returns:
      a :class:`SweepResult`.

    Raises:
      KeyError: a config lacks ``seed`` or a required ``train`` key.
      ValueError: the configs differ in an untraceable key, a seed is
        negative, or the data are empty, non-finite or smaller than a batch.
    """
    t_start = time.perf_counter()
    configs = list(configs)
    if not configs:
        raise ValueError("sweep_force_matching needs at least one config")
    _check_group(configs)
    cfg = configs[0].train
    n_steps, batch_size = int(cfg.n_steps), int(cfg.batch_size)
    if n_steps < 1:
        raise ValueError(f"train.n_steps must be a positive number of updates, got {n_steps}")
    eval_every = int(cfg.get("eval_every", None) or n_steps)
    clip = cfg.get("clip_norm", None) is not None
    tr = train.frame_arrays(train_frames, "train_frames")
    va = train.frame_arrays(val_frames, "val_frames")
    n_train = tr["positions"].shape[0]
    train.minibatch_indices(0, 0, n_train, batch_size)  # batch_size <= frames

    mesh = member_mesh() if mesh is None else mesh
    n_dev = int(mesh.shape["member"])
    K = len(configs)
    n_pad = (-K) % n_dev
    padded = configs + [configs[0]] * n_pad
    seeds = [int(c.seed) for c in padded]
    if not all(0 <= s < 2**32 for s in seeds):
        raise ValueError(f"seeds must be in [0, 2**32) (they seed jax.random.key), got {seeds}")
    hyper = {
        "lr": [float(c.train.lr) for c in padded],
        "lr_final_fraction": [float(c.train.get("lr_final_fraction", 0.01)) for c in padded],
    }
    if clip:
        hyper["clip_norm"] = [float(c.train.clip_norm) for c in padded]
    sharding = NamedSharding(mesh, P("member"))

    single = train.force_matching(
        model, sweep_optimizer(n_steps, clip=clip), batch_size=batch_size, neighbor=neighbor
    )
    state = _put(_init_members(model, single, tr, seeds, hyper, neighbor), sharding)
    # each member its own batch order, all one validation set
    trainer = train.ensemble(single, len(padded), same_batches=False, same_val_batches=True)
    losses = np.full((len(padded), n_steps), np.nan)
    finite_until = np.full(len(padded), -1)
    val_curve: list[tuple[int, list[float]]] = []
    first_step_s = train_s = 0.0
    for step in range(n_steps):
        t0 = time.perf_counter()
        idx = np.stack([train.minibatch_indices(s, step, n_train, batch_size) for s in seeds])
        batch = _put({k: v[idx] for k, v in tr.items()}, sharding)
        new_state, metrics = trainer.update_fn(state, batch)
        while neighbor is not None and np.any(np.asarray(metrics["overflow"])):
            trainer = trainer.reallocate(np.asarray(batch["positions"]))
            new_state, metrics = trainer.update_fn(state, batch)
        state = new_state
        losses[:, step] = np.asarray(metrics["loss"])
        finite = np.asarray(metrics["finite"])
        finite_until = np.where((finite_until < 0) & ~finite, step + 1, finite_until)
        if step == 0:
            first_step_s = time.perf_counter() - t0
        else:
            train_s += time.perf_counter() - t0
        done = step + 1
        if done % eval_every == 0 or done == n_steps:
            err = train.evaluate(trainer, state.params, va)
            val_curve.append((done, err))

    leaf = jax.tree.leaves(state.params)[0]
    members = _member_records(
        jax.device_get(state.params), K, seeds, hyper, losses, val_curve, finite_until, keep_params
    )
    return SweepResult(
        members=members,
        n_devices=n_dev,
        member_sharding=f"{leaf.sharding.spec} over {len(leaf.sharding.device_set)} devices",
        n_padded=n_pad,
        first_step_s=first_step_s,
        train_s=train_s,
        wall_s=time.perf_counter() - t_start,
    )
