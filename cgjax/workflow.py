"""Building blocks shared by the experiments: work directories, resumable stages, tables.

The model zoo by name is :func:`cgjax.potentials.build`; force matching from a
config section is :func:`cgjax.train.fit_force_matching`.

An experiment is a file with ``main(config, workdir)`` whose base config is
``configs/NAME.py`` (see :mod:`cgjax.config`); it writes ``log.txt``, ``plots/*.png``,
``stages/*.json`` (one per finished stage, so a rerun skips it) and
``results.json`` in ``workdir``. ``python -m cgjax.run EXPERIMENT.py`` runs one.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from cgjax import _faults
from cgjax.config import json_ready, write_json

__all__ = ["Workdir", "format_table"]


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
        self._clean_interrupted()

    def _clean_interrupted(self) -> None:
        """Removes the temporary files of writes a killed run left unfinished and says
        when ``results.json`` is unreadable (it is written again at the end).

        Temporary files are left alone in a multi-process sweep
        (``CGJAX_NUM_PROCESSES`` > 1): there the processes share the workdir, each
        under its own lock, and one may be writing while another starts.
        """
        stale = []
        shared = int(os.environ.get("CGJAX_NUM_PROCESSES", "1") or 1) > 1
        for sub in () if shared else ("", "stages", "params"):
            folder = os.path.join(self.path, sub)
            if os.path.isdir(folder):
                stale += [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".tmp")]
        for f in stale:
            with contextlib.suppress(OSError):
                os.remove(f)
        if stale:
            names = ", ".join(sorted(os.path.relpath(f, self.path) for f in stale))
            self.log(f"removed {len(stale)} temporary file(s) of an interrupted run: {names}")
        results = os.path.join(self.path, "results.json")
        if os.path.exists(results) and _unreadable(results):
            self.log(f"results.json is unreadable ({_unreadable(results)}): it is written again "
                     "when the run ends")  # fmt: skip

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
        _faults.point("log line written")

    def stage(self, name: str, fn: Callable[[], dict]) -> dict:
        """The result of stage ``name``: computed once, then read from ``stages/name.json``.

        ``fn()`` returns a JSON-ready dict; it is stored atomically when the
        stage finishes, so an interrupted run redoes only unfinished stages.
        """
        path = os.path.join(self.path, "stages", f"{name}.json")
        where = self._position(name)
        rel = os.path.relpath(path, self.path)
        if os.path.exists(path):
            problem = _unreadable(path)
            if not problem:
                self.log(f"{where}: done before, read from {rel}")
                with open(path) as f:
                    return json.load(f)
            self.log(f"{where}: {rel} is unreadable ({problem}): the stage runs again")
        with _faults.in_stage(name):
            self.log(f"{where}: start")
            t0 = time.perf_counter()
            out = dict(fn())
            out["stage_wall_s"] = time.perf_counter() - t0
            write_json(path, out)
        self._done_weight += self._plan.get(name, 0.0)
        self.log(f"{where}: done in {out['stage_wall_s']:.1f} s{self._eta(name)}")
        return json.loads(json.dumps(json_ready(out)))

    def save_params(self, name: str, params: Any) -> str:
        """Writes a params pytree to ``params/NAME.msgpack`` (atomically); returns
        its path relative to the workdir (what a stage's JSON records)."""
        from flax import serialization

        path = self.sub("params", f"{name}.msgpack")
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(serialization.msgpack_serialize(serialization.to_state_dict(params)))
            _faults.point(f"params/{name}.msgpack: temporary file written")
            os.replace(tmp, path)
            _faults.point(f"params/{name}.msgpack: replaced")
        except BaseException:  # a full disk: no partial file left behind
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return os.path.relpath(path, self.path)

    def load_params(self, rel: str, template: Any = None) -> Any:
        """The params saved by :meth:`save_params` at ``rel``, shaped like ``template``
        (``None``: the nested dicts of arrays as saved).

        Raises:
          FileNotFoundError: naming the file when it is missing.
        """
        import jax
        import jax.numpy as jnp
        from flax import serialization

        path = os.path.join(self.path, rel)
        if not os.path.exists(path):
            raise FileNotFoundError(f"parameters {path} are missing (a stage recorded them)")
        with open(path, "rb") as f:
            state = serialization.msgpack_restore(f.read())
        if template is not None:
            state = serialization.from_state_dict(template, state)
        return jax.tree.map(jnp.asarray, state)

    def read_json(self, rel: str) -> dict:
        """``rel``'s JSON content, or ``{}`` when it does not exist yet (a cache)."""
        path = os.path.join(self.path, rel)
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def write_json(self, rel: str, data: Any) -> str:
        """Writes ``data`` to ``rel`` in the workdir, atomically; returns the path."""
        path = self.sub(rel)
        write_json(path, data)
        return path

    def write_results(self, results: dict) -> str:
        """Writes ``results.json`` (atomically) and returns its path."""
        path = os.path.join(self.path, "results.json")
        write_json(path, results)
        return path


def _unreadable(path: str) -> str:
    """Why the JSON file ``path`` cannot be read (e.g. cut short by a crash), or ``""``."""
    try:
        with open(path) as f:
            json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{type(e).__name__}: {e}"
    return ""


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
