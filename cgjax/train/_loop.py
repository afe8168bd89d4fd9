"""The one training loop: batches, evaluation, logging, checkpoints, resume, early stop."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import tqdm.auto

from cgjax import _faults, units
from cgjax.train._state import Trainer, TrainingDiverged, TrainState, record_validation

__all__ = ["Schedule", "evaluate", "fit", "frame_arrays", "minibatch_indices", "restore_latest"]


def frame_arrays(frames: Any, name: str) -> dict[str, np.ndarray]:
    """``{"positions", "forces"[, "box"][, "state"]}`` from :class:`~cgjax.data.Frames` or a dict.

    Raw arrays are checked again (``Frames`` validates itself): shapes
    ``[T, N, 3]``, at least one frame, finite values. A dict may carry
    ``"state"`` ``[T, 2]``: each frame's state point (T in K, rho in g/cm^3),
    handed to the energy as ``state=`` (multi-state training of a state-aware
    potential).

    Raises:
      ValueError: naming ``name`` and the array on zero frames, missing
        forces, a shape mismatch or NaN/inf entries.
    """
    if isinstance(frames, dict):
        positions, forces, box = frames.get("positions"), frames.get("forces"), frames.get("box")
    else:
        positions = getattr(frames, "positions", None)
        forces = getattr(frames, "forces", None)
        box = getattr(frames, "box", None)
        box = box if box is not None and np.ndim(box) == 3 else None  # fixed box: the model's
    if positions is None or forces is None:
        raise ValueError(f"{name} needs positions and forces [T, N, 3]; forces are missing")
    out = {"positions": np.asarray(positions), "forces": np.asarray(forces)}
    if box is not None:
        out["box"] = np.asarray(box)
    state = frames.get("state") if isinstance(frames, dict) else None
    R = out["positions"]
    if state is not None:
        out["state"] = np.asarray(state)
        if out["state"].shape != (R.shape[0], 2):
            raise ValueError(
                f"{name}.state must have shape [T, 2] = [{R.shape[0]}, 2] (T in K, rho in "
                f"g/cm^3 per frame), got {list(out['state'].shape)}"
            )
    if R.ndim != 3 or R.shape[-1] != 3:
        raise ValueError(f"{name}.positions must have shape [T, N, 3] (nm), got {R.shape}")
    if R.shape[0] == 0:
        raise ValueError(f"{name} has zero frames; a split must hold at least one frame")
    if out["forces"].shape != R.shape:
        raise ValueError(
            f"{name}.forces must have the shape of positions {list(R.shape)} (kJ/mol/nm), "
            f"got {list(out['forces'].shape)}"
        )
    for key, a in out.items():
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}.{key} has {int(bad.sum())} non-finite (NaN or inf) entries, "
                f"the first at index {first}"
            )
    return out


def minibatch_indices(seed: int, step: int, n_frames: int, batch_size: int) -> np.ndarray:
    """Frame indices of update ``step`` (0-based): a function of ``(seed, step)`` only.

    Each epoch of ``n_frames // batch_size`` updates walks a fresh permutation
    drawn from ``(seed, epoch)``; the remainder frames of an epoch are skipped
    (a different set every epoch), so every batch has ``batch_size`` frames.
    """
    if batch_size > n_frames:
        raise ValueError(f"batch_size {batch_size} exceeds the {n_frames} training frames")
    per_epoch = n_frames // batch_size
    epoch, i = divmod(int(step), per_epoch)
    perm = np.random.default_rng([int(seed), epoch]).permutation(n_frames)
    return perm[i * batch_size : (i + 1) * batch_size]


def _padded(arrays: dict[str, np.ndarray], start: int, size: int) -> dict[str, np.ndarray]:
    """Frames ``start .. start + size`` with ``mask`` ``[size, N]``; past the end: padding."""
    T, N, _ = arrays["positions"].shape
    idx = np.arange(start, start + size)
    valid = idx < T
    batch = {k: v[np.where(valid, idx, 0)] for k, v in arrays.items()}
    batch["mask"] = np.broadcast_to(valid[:, None], (size, N)).astype(batch["forces"].dtype)
    return batch


def evaluate(trainer: Trainer, params: Any, arrays: Any) -> dict[str, Any]:
    """Force errors of ``params`` on all frames, in chunks of ``trainer.batch_size``.

    The last chunk is padded and masked, so ``eval_fn`` compiles once. When
    the trainer's neighbor list overflows on these frames, it is widened
    (``trainer.reallocate``) and the evaluation reruns.

    Args:
      arrays: ``{"positions", "forces"}`` ``[T, N, 3]`` (see :func:`frame_arrays`),
        or a list of ``K`` such dicts (one per member) for a ``member_batches``
        ensemble.

    Returns:
      ``{"mse": (kJ/mol/nm)^2, "rmse": kJ/mol/nm, "mae": kJ/mol/nm}`` as floats
      (lists of ``K`` floats for an ensemble).
    """
    return _evaluate(trainer, params, arrays)[0]


def _all_positions(arrays: Any) -> np.ndarray:
    sets = list(arrays) if isinstance(arrays, list | tuple) else [arrays]
    return np.concatenate([a["positions"] for a in sets])


def _evaluate(
    trainer: Trainer, params: Any, arrays: Any, log: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], Trainer]:
    """:func:`evaluate`, and the trainer it ended with (wider after an overflow)."""
    B = trainer.batch_size
    per_member = isinstance(arrays, list | tuple)
    sets = list(arrays) if per_member else [arrays]
    n_max = max(a["positions"].shape[0] for a in sets)
    while True:
        totals = None
        for start in range(0, n_max, B):
            chunks = [_padded(a, start, B) for a in sets]
            batch = jax.tree.map(lambda *x: np.stack(x), *chunks) if per_member else chunks[0]
            out = trainer.eval_fn(params, batch)
            totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
        if not np.any(np.asarray(totals.get("overflow", 0))):
            break
        if trainer.reallocate is None:
            raise ValueError(
                "the neighbor list overflowed on the evaluation frames and this trainer "
                "cannot reallocate it; allocate it with cgjax.allocate_neighbor_list over "
                "all frames (train and validation)"
            )
        trainer = trainer.reallocate(_all_positions(arrays))
        if log is not None:
            log("neighbor list overflowed on the evaluation frames: reallocated, evaluating again")
    mse = np.asarray(totals["sse"] / totals["count"], np.float64)
    mae = np.asarray(totals["sae"] / totals["count"], np.float64)
    as_out = lambda x: x.tolist()
    return {"mse": as_out(mse), "rmse": as_out(np.sqrt(mse)), "mae": as_out(mae)}, trainer


def _member_sets(frames: Any, name: str, trainer: Trainer, per_member: bool) -> Any:
    """One checked dict, or ``K`` of them for an ensemble with one batch per member."""
    option = "same_val_batches" if name == "val_frames" else "same_batches"
    if not per_member:
        if isinstance(frames, list | tuple):
            raise ValueError(
                f"{name} is a list of {len(frames)} data sets, but only an ensemble made "
                f"with {option}=False takes one set per member"
            )
        return frame_arrays(frames, name)
    if not isinstance(frames, list | tuple) or len(frames) != trainer.n_members:
        raise ValueError(
            f"{name} must be a list of K = {trainer.n_members} data sets (one per member) "
            f"for an ensemble made with {option}=False"
        )
    return [frame_arrays(f, f"{name}[{k}]") for k, f in enumerate(frames)]


def _checkpoint_manager(workdir: str, max_to_keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"), options=options
    )


def restore_latest(workdir: str, template: TrainState) -> TrainState | None:
    """The state in ``workdir``'s latest checkpoint (shaped like ``template``), or None."""
    mgr = _checkpoint_manager(workdir, 3)
    step, state = _restore(mgr, template, lambda m: print(m, flush=True))
    return None if step is None else state


def _trim_metrics(path: str, last_step: int) -> None:
    """Drops records after ``last_step`` (they belong to a run that was cut off) and
    a last line cut short by a crash; rewrites the file atomically."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: written again
                continue
            if record["step"] <= last_step:
                keep.append(line if line.endswith("\n") else line + "\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(keep)
    os.replace(tmp, path)


def _restore(mgr: ocp.CheckpointManager, template: Any, log: Callable[[str], None]):
    """``(step, state)`` of the newest checkpoint that restores, or ``(None, template)``.

    Newer steps that fail to restore while an older one does (a checkpoint cut
    short by a crash or a full disk) are moved to ``checkpoints_damaged/`` beside
    the checkpoint directory and reported through ``log``; nothing is deleted.

    Raises:
      RuntimeError: no checkpoint restores (e.g. they belong to another model),
        naming the directory and the error.
    """
    failed = []
    for step in sorted(mgr.all_steps(), reverse=True):
        try:
            state = mgr.restore(step, args=ocp.args.StandardRestore(template))
        except Exception as e:  # orbax raises many types for damaged files
            failed.append((step, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"))
            continue
        if failed:
            aside = os.path.join(os.path.dirname(str(mgr.directory)), "checkpoints_damaged")
            os.makedirs(aside, exist_ok=True)
            for bad, why in failed:
                os.replace(os.path.join(str(mgr.directory), str(bad)),
                           os.path.join(aside, f"{bad}-{time.time_ns()}"))  # fmt: skip
                log(f"checkpoint {bad} in {mgr.directory} cannot be restored ({why}); moved to "
                    f"{aside}, resuming from checkpoint {step}")  # fmt: skip
            mgr.reload()
        return step, state
    if failed:
        raise RuntimeError(
            f"no checkpoint in {mgr.directory} can be restored into this run's state (newest: "
            f"step {failed[0][0]}, {failed[0][1]}); they may belong to another model or config: "
            "use another workdir or remove that directory to start over"
        )
    return None, template


def _diverged(step: int, what: str, mgr: ocp.CheckpointManager | None) -> TrainingDiverged:
    last = None if mgr is None else mgr.latest_step()
    where = "" if mgr is None else f" in {mgr.directory}"
    return TrainingDiverged(
        f"training diverged at step {step}: {what} (NaN/inf in the loss, gradients or "
        f"parameters); the last good checkpoint is step {last}{where}",
        step=step,
    )


def _stopped(state: TrainState, patience: int | None) -> bool:
    return patience is not None and bool(np.all(np.asarray(state.bad_epochs) >= patience))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When :func:`fit` updates, evaluates, checkpoints and stops. Frozen; validated.

    Attributes:
      n_steps: total number of updates (counting those before a resume).
      eval_every: updates between evaluations (and one at the end).
      checkpoint_every: updates between checkpoints (and one at the end).
      early_stopping_patience: stop after this many evaluations without a
        lower validation loss (all members, for an ensemble); ``None``: never.
      seed: seed of the batch order (the batch of update ``s`` depends only
        on ``(seed, s)``).

    Raises:
      ValueError: naming the field and the value.
    """

    n_steps: int
    eval_every: int
    checkpoint_every: int
    early_stopping_patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_steps", "eval_every", "checkpoint_every"):
            v = int(getattr(self, name))
            if v < 1:
                raise ValueError(f"{name} must be a positive number of updates, got {v}")
            object.__setattr__(self, name, v)
        patience = self.early_stopping_patience
        if patience is not None:
            if int(patience) < 0:
                raise ValueError(
                    f"early_stopping_patience must be >= 0 evaluations or None, got {patience}"
                )
            object.__setattr__(self, "early_stopping_patience", int(patience))
        object.__setattr__(self, "seed", int(self.seed))

    def replace(self, **changes: Any) -> Schedule:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_config(cls, cfg: Any, *, seed: int = 0) -> Schedule:
        """From a ``train`` config section: ``n_steps``, ``eval_every``,
        ``checkpoint_every`` and optional ``patience`` (evaluations)."""
        return cls(
            n_steps=int(cfg.n_steps),
            eval_every=int(cfg.eval_every),
            checkpoint_every=int(cfg.checkpoint_every),
            early_stopping_patience=cfg.get("patience", None),
            seed=seed,
        )


def _batches(trainer: Trainer, train_sets: list, seed: int) -> Callable[[int], Any]:
    """``batch_of(step)``: the batch of update ``step`` (stacked per member when needed)."""
    for a in train_sets:  # checks batch_size <= frames
        minibatch_indices(seed, 0, a["positions"].shape[0], trainer.batch_size)

    def batch_of(step: int) -> dict[str, np.ndarray]:
        chunks = []
        for a in train_sets:
            idx = minibatch_indices(seed, step, a["positions"].shape[0], trainer.batch_size)
            chunks.append({k: v[idx] for k, v in a.items()})
        return (
            jax.tree.map(lambda *x: np.stack(x), *chunks) if trainer.member_batches else chunks[0]
        )

    return batch_of


def _open_workdir(workdir: str | None, max_to_keep: int, state: TrainState):
    """``(manager, metrics_path, state)``: the latest checkpoint restored, later metrics cut."""
    if workdir is None:
        return None, None, state
    os.makedirs(workdir, exist_ok=True)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    mgr = _checkpoint_manager(workdir, max_to_keep)
    latest, state = _restore(mgr, state, lambda m: tqdm.auto.tqdm.write(m))
    if latest is not None:
        _trim_metrics(metrics_path, int(latest))
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    return mgr, metrics_path, state


def _update(trainer: Trainer, state: TrainState, batch: Any, step: int, write: Callable):
    """``(trainer, new_state, metrics, reallocated)``: one update, rerun after overflows."""
    new_state, metrics = trainer.update_fn(state, batch)
    reallocated = 0
    while np.any(np.asarray(metrics.get("overflow", False))):
        if trainer.reallocate is None:
            raise ValueError(
                f"the neighbor list overflowed at step {step + 1} and this trainer "
                "cannot reallocate it; allocate it with cgjax.allocate_neighbor_list "
                "over all training frames (or more capacity)"
            )
        trainer = trainer.reallocate(batch["positions"])
        reallocated += 1
        write(f"neighbor list overflowed at step {step + 1}: reallocated, rerunning")
        new_state, metrics = trainer.update_fn(state, batch)
    return trainer, new_state, metrics, reallocated


def _validate(trainer, state, val, record, done, patience, mgr, write):
    """Evaluates ``state.params`` on ``val`` into ``record``; ``(trainer, state, stop)``."""
    err, trainer = _evaluate(trainer, state.params, val, write)
    if not np.all(np.isfinite(err["mse"])):
        raise _diverged(done, f"validation loss = {err['mse']}", mgr)
    state = record_validation(state, err["mse"])
    rmse = np.asarray(err["rmse"])
    record.update(
        val_loss=err["mse"],
        val_force_rmse=err["rmse"],
        val_force_mae=err["mae"],
        val_force_rmse_kcal_per_mol_per_A=(rmse / units.kcal_per_mol_per_angstrom).tolist(),
        best_val_loss=np.asarray(state.best_val).tolist(),
        bad_epochs=np.asarray(state.bad_epochs).tolist(),
    )
    stop = _stopped(state, patience)
    record["early_stopped"] = stop
    return trainer, state, stop


def fit(
    trainer: Trainer,
    state: TrainState,
    train_frames: Any,
    val_frames: Any,
    schedule: Schedule,
    *,
    workdir: str | None,
    max_to_keep: int = 3,
    log: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> TrainState:
    """Runs ``trainer`` as ``schedule`` says, with evaluation, checkpoints and resume.

    Files in ``workdir``: ``metrics.jsonl`` (one JSON object per evaluation:
    ``step``, ``train_loss`` (mean since the last evaluation), ``val_loss``
    (force MSE, (kJ/mol/nm)^2), ``val_force_rmse`` and ``val_force_mae``
    (kJ/mol/nm), ``val_force_rmse_kcal_per_mol_per_A``, ``best_val_loss``,
    ``bad_epochs``) and ``checkpoints/`` (orbax, the latest ``max_to_keep``).

    Rerun with the same ``workdir`` and the same arguments, ``fit`` resumes
    from the latest checkpoint and ends with the parameters of an
    uninterrupted run: the batch of update ``s`` depends only on ``(seed, s)``.

    Args:
      trainer: a :class:`Trainer` (single model or ensemble).
      state: the initial state (``trainer.init_fn(key, params)``), or one
        already trained (it goes on from ``state.step``); replaced by the
        latest checkpoint in ``workdir`` when there is one.
      train_frames, val_frames: :class:`~cgjax.data.Frames` with forces, or
        dicts of ``positions``/``forces`` ``[T, N, 3]`` arrays (nm, kJ/mol/nm);
        for an ensemble made with ``same_batches=False``, lists of ``K`` of
        them (member ``k`` trains and validates on its own sets, e.g. from
        :func:`kfold_indices`; ``val_frames`` follows ``same_val_batches``).
        ``val_frames=None`` skips validation (and early stopping).
      schedule: a :class:`Schedule` (updates, evaluation and checkpoint
        intervals, early-stopping patience, batch-order seed).
      workdir: where metrics and checkpoints go; ``None`` writes nothing.
      max_to_keep: checkpoints kept.
      log: called with each metrics record.
      progress: show a tqdm progress bar.

    Returns:
      the final state; ``state.best_params`` holds the parameters with the
      lowest validation loss.

    Raises:
      TypeError: ``schedule`` is not a :class:`Schedule`.
      ValueError: on empty splits, missing or non-finite data.
      TrainingDiverged: when the loss, gradients or parameters become NaN or
        inf; the checkpoint directory keeps the last good step.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a train.Schedule, got {type(schedule).__name__}")
    n_steps, patience = schedule.n_steps, schedule.early_stopping_patience
    train = _member_sets(train_frames, "train_frames", trainer, trainer.member_batches)
    per_member_val = trainer.member_batches
    if trainer.member_val_batches is not None:
        per_member_val = trainer.member_val_batches
    val = None
    if val_frames is not None:
        val = _member_sets(val_frames, "val_frames", trainer, per_member_val)
    batch_of = _batches(trainer, train if isinstance(train, list) else [train], schedule.seed)
    mgr, metrics_path, state = _open_workdir(workdir, max_to_keep, state)
    # A state that has already been trained goes on from its own step.
    start = int(np.max(np.asarray(state.step)))
    if start >= n_steps or _stopped(state, patience):
        return state

    def save(state: TrainState) -> None:
        step = int(np.max(np.asarray(state.step)))
        if mgr is not None and mgr.latest_step() != step:
            mgr.save(step, args=ocp.args.StandardSave(state), force=True)
            mgr.wait_until_finished()
            _faults.point(f"checkpoint {step} saved")

    # A checkpoint is written only once its state is known to be good: the
    # next update's loss (computed at its parameters) or an evaluation of
    # them came out finite. Finite but wild parameters whose loss is NaN
    # never overwrite the last good checkpoint.
    pending: TrainState | None = None
    window: list[Any] = []
    reallocations = 0
    bar = tqdm.auto.tqdm(total=n_steps, initial=start, disable=not progress, desc="train")
    try:
        for step in range(start, n_steps):
            trainer, new_state, metrics, grew = _update(
                trainer, state, batch_of(step), step, bar.write
            )
            reallocations += grew
            loss = np.asarray(metrics["loss"], np.float64)
            if not np.all(np.asarray(metrics["finite"])):
                raise _diverged(step + 1, f"loss = {loss.tolist()}", mgr)
            if pending is not None:
                save(pending)
                pending = None
            state = new_state
            window.append(loss)
            done = step + 1
            bar.update(1)
            bar.set_postfix(loss=float(np.mean(loss)))
            stop = evaluated = False
            if done % schedule.eval_every == 0 or done == n_steps:
                record: dict[str, Any] = {"step": done, "train_loss": np.mean(window, 0).tolist()}
                if reallocations:
                    record["neighbor_reallocations"] = reallocations
                window = []
                if val is not None:
                    trainer, state, stop = _validate(
                        trainer, state, val, record, done, patience, mgr, bar.write
                    )
                    evaluated = True
                if metrics_path is not None:
                    with open(metrics_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    _faults.point(f"metrics of step {done} appended")
                if log is not None:
                    log(record)
            if done % schedule.checkpoint_every == 0 or done == n_steps or stop:
                if evaluated or done == n_steps or stop:
                    save(state)
                else:
                    pending = state
            if stop:
                break
    finally:
        bar.close()
    return state
