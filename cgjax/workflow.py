"""Building blocks shared by the experiments: work directories, resumable stages,
the model zoo by name, and a force-matching run driven by a config.

An experiment is a file with ``main(config, workdir)`` whose base config is
``configs/NAME.py`` (see :mod:`cgjax.config`); it writes ``log.txt``, ``plots/*.png``,
``stages/*.json`` (one per finished stage, so a rerun skips it) and
``results.json`` in ``workdir``. ``python -m cgjax.run EXPERIMENT.py`` runs one.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax

from cgjax import potentials, train, units
from cgjax._neighbor_list import allocate_neighbor_list
from cgjax.config import json_ready, write_json

__all__ = [
    "MODELS",
    "Workdir",
    "build_potential",
    "format_table",
    "train_force_matching",
]

#: The model zoo by config name (classes in :mod:`cgjax.potentials`).
MODELS = {
    "deeppot": "DeepPotSE",
    "allegro": "Allegro",
    "nequip": "NequIP",
    "gnn": "GNN",
    "schnet": "SchNet",
    "hipnn": "HIPNN",
    "lj": "LennardJones",
    "spline": "SplinePair",
}


class Workdir:
    """An experiment's directory: logging, plots, resumable stages, results.

    Args:
      path: the directory (created).
      echo: also print log lines to stdout.
    """

    def __init__(self, path: str, *, echo: bool = True):
        self.path = os.path.abspath(path)
        self.echo = echo
        for sub in ("", "plots", "stages"):
            os.makedirs(os.path.join(self.path, sub), exist_ok=True)
        self._plan: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._done_weight = 0.0

    def plan(self, stages: dict[str, float]) -> None:
        """Declares the stages to come with their expected relative costs.

        Stage lines then say ``k/n`` and, once a stage has run in this process,
        an estimate of the time left: the time so far scaled by the expected
        cost still to come (the weights are a preset's measured stage times;
        stages read back from ``stages/`` cost nothing).
        """
        self._plan = {k: float(v) for k, v in stages.items()}

    def _position(self, name: str) -> str:
        if name not in self._plan:
            return f"stage {name}"
        k = list(self._plan).index(name) + 1
        return f"stage {k}/{len(self._plan)} {name}"

    def _eta(self, name: str) -> str:
        names = list(self._plan)
        if name not in self._plan or self._done_weight <= 0:
            return ""
        left = sum(self._plan[k] for k in names[names.index(name) + 1 :])
        if left <= 0:
            return ""
        eta = (time.perf_counter() - self._t0) * left / self._done_weight
        return f"; about {eta / 60:.1f} min left"

    def sub(self, *names: str) -> str:
        """A path inside the workdir (parent directories created)."""
        p = os.path.join(self.path, *names)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def plot_path(self, name: str) -> str:
        return os.path.join(self.path, "plots", name)

    def log(self, message: str) -> None:
        """Appends a time-stamped line to ``log.txt`` (and prints it)."""
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        line = f"[{stamp}] {message}"
        with open(os.path.join(self.path, "log.txt"), "a") as f:
            f.write(line + "\n")
        if self.echo:
            print(line, flush=True)

    def stage(self, name: str, fn: Callable[[], dict]) -> dict:
        """The result of stage ``name``: computed once, then read from ``stages/name.json``.

        ``fn()`` returns a JSON-ready dict; it is stored atomically when the
        stage finishes, so an interrupted run redoes only unfinished stages.
        """
        path = os.path.join(self.path, "stages", f"{name}.json")
        where = self._position(name)
        if os.path.exists(path):
            with open(path) as f:
                self.log(f"{where}: done before, read from {os.path.relpath(path, self.path)}")
                return json.load(f)
        self.log(f"{where}: start")
        t0 = time.perf_counter()
        out = dict(fn())
        out["stage_wall_s"] = time.perf_counter() - t0
        write_json(path, out)
        self._done_weight += self._plan.get(name, 0.0)
        self.log(f"{where}: done in {out['stage_wall_s']:.1f} s{self._eta(name)}")
        return json.loads(json.dumps(json_ready(out)))

    def write_results(self, results: dict) -> str:
        """Writes ``results.json`` (atomically) and returns its path."""
        path = os.path.join(self.path, "results.json")
        write_json(path, results)
        return path


def build_potential(name: str, overrides: Any = None, **fixed: Any) -> potentials.Term:
    """A model of the zoo from its config name, the paper defaults and ``overrides``.

    Args:
      name: a key of :data:`MODELS` (``"deeppot"``, ``"allegro"``, ...).
      overrides: a dict/ConfigDict of constructor fields replacing the class's
        ``default_config()`` (the paper's hyperparameters) where it has one.
      **fixed: fields set last (e.g. ``cutoff=0.6``, ``n_species=1``).

    Raises:
      ValueError: naming the model or the field when either does not exist.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the zoo has {sorted(MODELS)}")
    cls = getattr(potentials, MODELS[name])
    defaults = getattr(cls, "default_config", None)
    kwargs = dict(defaults()) if callable(defaults) else {}
    if overrides is not None:
        kwargs.update(dict(overrides))
    kwargs.update(fixed)
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    unknown = sorted(k for k in kwargs if k not in fields)
    if unknown:
        raise ValueError(
            f"model {name!r} ({cls.__name__}) has no field(s) {unknown}; its fields are "
            f"{sorted(f for f in fields if f not in ('parent', 'name'))}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return cls(**kwargs)


def _optimizer(cfg: Any) -> optax.GradientTransformation:
    """Adam with a cosine decay from ``lr`` to ``lr * lr_final_fraction`` over ``n_steps``."""
    schedule = optax.cosine_decay_schedule(
        float(cfg.lr), int(cfg.n_steps), alpha=float(cfg.get("lr_final_fraction", 0.01))
    )
    clip = cfg.get("clip_norm", None)
    adam = optax.adam(schedule)
    return adam if clip is None else optax.chain(optax.clip_by_global_norm(float(clip)), adam)


def train_force_matching(
    model: potentials.EnergyModel,
    train_frames: Any,
    val_frames: Any,
    cfg: Any,
    workdir: str | None,
    *,
    seed: int = 0,
    n_members: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    params0: Any = None,
    frozen: tuple[str, ...] = (),
) -> tuple[Any, train.Trainer, dict]:
    """Force matching of ``model`` with a config, resumable in ``workdir``.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel`.
      train_frames, val_frames: :class:`~cgjax.data.Frames` with forces.
      cfg: ``lr``, ``n_steps``, ``batch_size``, ``eval_every``,
        ``checkpoint_every``, optional ``lr_final_fraction`` (cosine decay),
        ``clip_norm``, ``patience`` (early stopping, evaluations).
      workdir: checkpoints and ``metrics.jsonl`` (``None``: in memory).
      seed: initialisation and batch order; ensemble member ``k`` is
        initialised from ``fold_in(key(seed), k)``.
      n_members: ``None`` for one model; ``K`` trains a vmapped ensemble.
      params0: starting parameters (one model); default ``model.init_fn``.
      frozen: top-level terms kept fixed (e.g. a prior fitted before).

    Returns:
      ``(best_params, trainer, metrics)`` with ``metrics`` holding the
      validation force RMSE/MAE of the best parameters in kJ/mol/nm and
      kcal/mol/Å (lists for an ensemble) and the training time.
    """
    positions = np.concatenate([train_frames.positions, val_frames.positions])
    nb = allocate_neighbor_list(model, positions)
    R0 = train_frames.positions[0]
    key = jax.random.key(seed)
    trainer = train.force_matching(
        model, _optimizer(cfg), batch_size=int(cfg.batch_size), neighbor=nb, frozen=tuple(frozen)
    )
    if params0 is not None:
        if n_members is not None:
            raise ValueError("params0 is for one model, not an ensemble (n_members)")
    elif n_members is None:
        params0 = model.init_fn(key, R0, neighbor=nb)
    else:
        params0 = train.init_ensemble_params(model, key, R0, int(n_members), neighbor=nb)
        trainer = train.ensemble(trainer, int(n_members))
    state = trainer.init_fn(key, params0)
    t0 = time.perf_counter()
    state = train.fit(
        trainer, state, train_frames, val_frames, n_steps=int(cfg.n_steps),
        eval_every=int(cfg.eval_every), checkpoint_every=int(cfg.checkpoint_every),
        workdir=workdir, early_stopping_patience=cfg.get("patience", None), seed=seed,
        progress=progress,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    err = train.evaluate(trainer, state.best_params, train.frame_arrays(val_frames, "val_frames"))
    rmse = np.asarray(err["rmse"])
    metrics = {
        "val_force_rmse": err["rmse"],
        "val_force_mae": err["mae"],
        "val_force_rmse_kcal_per_mol_per_A": (rmse / units.kcal_per_mol_per_angstrom).tolist(),
        "n_params": int(sum(np.size(x) for x in jax.tree.leaves(params0)))
        // (1 if n_members is None else int(n_members)),
        "train_wall_s": wall,
        "n_steps": int(np.max(np.asarray(state.step))),
    }
    if log is not None:
        log(f"validation force RMSE {np.round(metrics['val_force_rmse_kcal_per_mol_per_A'], 3)} "
            f"kcal/mol/Å")  # fmt: skip
    return state.best_params, trainer, metrics


def format_table(rows: Sequence[dict], columns: Sequence[str], *, floatfmt: str = ".3g") -> str:
    """A plain-text table of ``rows`` (dicts) over ``columns``, for logs and stdout."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return "-" if v is None else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths, strict=True))
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])
