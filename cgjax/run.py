"""Run an experiment file: ``python -m cgjax.run EXPERIMENT.py [options]``.

    python -m cgjax.run experiments/water_data_efficiency.py \\
        --config=configs/water_data_efficiency.py:smoke \\
        --config.train.n_steps=100 --workdir=runs/water

Options:
  --config=FILE.py[:PRESET]  a config file whose ``get_config(preset)`` gives the
                             ConfigDict (default: ``configs/<experiment>.py``'s
                             ``get_config()``, beside ``experiments/``).
  --config.KEY=VALUE         override one key (dotted path); the value is parsed as
                             a Python literal and must have the key's type.
  --workdir=DIR              where everything goes (default ``runs/<experiment>``;
                             ``--workdir DIR`` and ``--config FILE`` work too).
                             Rerunning with the same workdir resumes.
  --allow-config-change      run in a workdir whose ``config.json`` differs.
  --sweep KEY=VALUES         sweep a key (repeatable): ``train.lr=[1e-3,3e-4]``,
                             ``seed=range(8)``. Members that differ only in seeds
                             and floats train as one vmapped group sharded over
                             all devices; with ``CGJAX_COORDINATOR_ADDRESS``,
                             ``CGJAX_NUM_PROCESSES`` and ``CGJAX_PROCESS_ID`` set,
                             each process (host) takes its share. Writes
                             ``sweep.csv`` and ``sweep.png``. The experiment
                             defines ``sweep_group(configs, workdir)``.
  --help                     print every config key with its default, meaning and
                             unit (the config file's ``HELP``); exits 1 when a key
                             has none.

The workdir gets ``config.json`` (the resolved config), ``log.txt``,
``results.json``, ``plots/`` and whatever the experiment writes. Before
anything is written the run checks the workdir (writable, at least
``CGJAX_MIN_FREE_MB``, default 200, MiB free), the config file and preset, and
every value against the config file's ``CHECKS`` (ranges); a failure is one
``error:`` line. A run holds ``WORKDIR/.lock`` while it runs: a second run on
the same workdir stops at once naming the first one's pid and host; the lock
of a killed run is taken over.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any

from cgjax.config import (
    apply_override,
    check_config,
    help_lines,
    json_ready,
    load_config_file,
    load_module,
    undocumented_keys,
    write_json,
)

__all__ = ["main"]


def _flat_json(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out = {}
    for k, v in d.items():
        out.update(_flat_json(v, f"{prefix}{k}."))
    return out


def _parse_argv(argv: list[str]) -> dict[str, Any]:
    """The command line as ``positional``, ``config_spec``, ``workdir``, ``overrides``
    (``[(key, text)]``), ``sweeps`` and ``flags``; SystemExit on a malformed option."""
    flags = {"--help": False, "--allow-config-change": False}
    positional, config_spec, workdir, overrides, sweeps = [], None, None, [], []
    args = iter(argv)
    for arg in args:
        if arg == "--sweep":
            value = next(args, None)
            if value is None:
                raise SystemExit("--sweep needs KEY=VALUES, e.g. --sweep 'seed=range(4)'")
            sweeps.append(value)
        elif arg.startswith("--sweep="):
            sweeps.append(arg.split("=", 1)[1])
        elif arg in flags:
            flags[arg] = True
        elif arg.startswith("--config."):
            key, eq, val = arg[len("--config.") :].partition("=")
            if not eq:
                raise SystemExit(f"{arg}: expected --config.KEY=VALUE")
            overrides.append((key, val))
        elif arg.startswith("--config="):
            config_spec = arg.split("=", 1)[1]
        elif arg.startswith("--workdir="):
            workdir = arg.split("=", 1)[1]
        elif arg in ("--config", "--workdir"):  # the space-separated form
            value = next(args, None)
            if value is None or value.startswith("--"):
                raise SystemExit(f"{arg} needs a value: {arg}=VALUE or {arg} VALUE")
            if arg == "--config":
                config_spec = value
            else:
                workdir = value
        elif arg.startswith("--"):
            raise SystemExit(f"unknown option {arg}; see python -m cgjax.run --help")
        else:
            positional.append(arg)
    return dict(positional=positional, config_spec=config_spec, workdir=workdir,
                overrides=overrides, sweeps=sweeps, flags=flags)  # fmt: skip


#: Free space (MiB) the workdir's filesystem must have at the start
#: (environment variable ``CGJAX_MIN_FREE_MB``): a full disk otherwise fails
#: only when the results are written, at the end.
MIN_FREE_MB = 200


def _check_workdir(workdir: str) -> None:
    """SystemExit with one ``error:`` line unless ``workdir`` exists or can be created,
    is writable and its filesystem has ``CGJAX_MIN_FREE_MB`` (default
    :data:`MIN_FREE_MB`) free. Creates nothing (a probe file is removed at once)."""
    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise SystemExit(f"error: workdir {path} is a file, not a directory")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise SystemExit(f"error: cannot create workdir {path}: {existing} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".cgjax-write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        what = "is" if existing == path else f"cannot be created ({existing})"
        raise SystemExit(f"error: workdir {path} {what} not writable: {e.strerror}") from None
    try:
        need = float(os.environ.get("CGJAX_MIN_FREE_MB", MIN_FREE_MB))
    except ValueError:
        raise SystemExit(
            f"error: CGJAX_MIN_FREE_MB must be a number of MiB, "
            f"got {os.environ['CGJAX_MIN_FREE_MB']!r}"
        ) from None
    free = shutil.disk_usage(existing).free / 2**20
    if free < need:
        raise SystemExit(
            f"error: only {free:.0f} MiB free on the filesystem of workdir {path}; a run needs "
            f"{need:.0f} MiB (CGJAX_MIN_FREE_MB) for its checkpoints and results"
        )


def _config(path: str, config_spec: str | None, overrides: list) -> Any:
    """The config file (:class:`cgjax.config.ConfigFile`) with ``overrides`` applied;
    SystemExit with one ``error:`` line on a missing file, unknown preset or bad key."""
    try:
        cfg = load_config_file(path, config_spec)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    try:
        for key, val in overrides:
            apply_override(cfg.config, key, val)
    except (KeyError, TypeError) as e:
        raise SystemExit(f"error: {e.args[0]}") from None
    return cfg


def _check_values(configs: list, checks: dict, config_path: str, sweeps: list) -> None:
    """SystemExit naming every key whose value breaks the config file's ``CHECKS``."""
    problems: list[str] = []
    for c in configs:
        problems += [p for p in check_config(c, checks) if p not in problems]
    if problems:
        swept = " (over the --sweep values)" if sweeps else ""
        raise SystemExit(f"error: {'; '.join(problems)}{swept} (CHECKS of {config_path})")


def _lock(workdir: str):
    """The workdir's lock, taken (one run per workdir; one per process of a
    multi-process sweep); SystemExit naming the holder when another run has it."""
    from cgjax._workdir_lock import WorkdirLock, WorkdirLocked

    n_proc = int(os.environ.get("CGJAX_NUM_PROCESSES", "1") or 1)
    name = f".lock.p{os.environ.get('CGJAX_PROCESS_ID', '0')}" if n_proc > 1 else ".lock"
    lock = WorkdirLock(workdir, name)
    try:
        took_over = lock.acquire()
    except WorkdirLocked as e:
        raise SystemExit(f"error: {e}") from None
    if took_over:
        print(f"workdir: took over a stale lock: {took_over}", flush=True)
    return lock


def main(argv: list[str] | None = None) -> dict:
    """Runs ``python -m cgjax.run`` with ``argv`` (default ``sys.argv[1:]``); see the module.

    Everything that can be checked is checked before the workdir is written:
    the workdir (writable, free space), the config file and preset, every
    override's key and type, and the values against the config file's
    ``CHECKS``; each failure is SystemExit with one ``error:`` line. Then the
    workdir's lock is taken (a second run on it stops, naming the first).
    """
    a = _parse_argv(list(sys.argv[1:] if argv is None else argv))
    positional, config_spec, workdir = a["positional"], a["config_spec"], a["workdir"]
    sweeps, flags = a["sweeps"], a["flags"]
    if not positional:
        print(__doc__)
        raise SystemExit(0 if flags["--help"] else 2)
    if len(positional) > 1:
        raise SystemExit(f"one experiment file expected, got {positional}")
    path = positional[0]
    if not os.path.isfile(path):
        raise SystemExit(f"experiment file not found: {path}")
    name = os.path.splitext(os.path.basename(path))[0]
    workdir = workdir or os.path.join("runs", name)
    if not flags["--help"]:
        _check_workdir(workdir)  # before the experiment's (slow) imports
    cfg = _config(path, config_spec, a["overrides"])
    config = cfg.config
    experiment = load_module(path)
    if not hasattr(experiment, "main"):
        raise SystemExit(f"{path} must define main(config, workdir)")
    if flags["--help"]:
        print(f"config keys of {path} (defaults{' of ' + config_spec if config_spec else ''}):")
        print("\n".join(help_lines(config, cfg.descriptions)))
        problems = undocumented_keys(config, cfg.descriptions)
        if problems:
            raise SystemExit(
                f"error: config keys without a one-line meaning and [unit] in the config "
                f"file's HELP: {problems}"
            )
        return {}
    snapshot = json_ready(config.to_dict())
    members = [config]
    if sweeps:
        from cgjax import sweep

        if not hasattr(experiment, "sweep_group"):
            raise SystemExit(f"{path} defines no sweep_group(configs, workdir): it cannot sweep")
        try:  # every value is checked before any work starts
            members = sweep.expand(config, [sweep.parse_sweep(s) for s in sweeps])
        except (KeyError, TypeError, ValueError) as e:
            raise SystemExit(f"error: {e.args[0]}") from None
        snapshot = {"config": snapshot, "sweep": sweeps}
    _check_values(members, cfg.checks, cfg.path, sweeps)
    lock = _lock(workdir)
    try:
        return _run(experiment, config, workdir, snapshot, sweeps, flags)
    finally:
        lock.release()


def _run(experiment, config, workdir, snapshot, sweeps, flags) -> dict:
    """``main`` once everything is checked and the workdir locked."""
    cfg_path = os.path.join(workdir, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            previous = json.load(f)
        if previous != snapshot and not flags["--allow-config-change"]:
            a, b = _flat_json(previous), _flat_json(snapshot)
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise SystemExit(
                f"{workdir} holds a run with another config (differs in {diff}); use another "
                "--workdir, or --allow-config-change to continue it anyway"
            )
    if sweeps:
        from cgjax import sweep

        sweep.init_distributed()
    write_json(cfg_path, snapshot)
    print(f"workdir: {os.path.abspath(workdir)} (log.txt, plots/, results.json)", flush=True)
    if not sweeps:
        out = experiment.main(config, workdir)
        results = os.path.join(os.path.abspath(workdir), "results.json")
        if os.path.exists(results):
            print(f"results: {results}", flush=True)
        return out
    rows = sweep.run_sweep(
        lambda configs: experiment.sweep_group(configs, workdir), config, sweeps, workdir
    )
    if rows:
        from cgjax.workflow import format_table

        cols = [k for k in rows[0] if not isinstance(rows[0][k], list | dict)]
        print(format_table(rows, cols), flush=True)
    return {"sweep": rows}


if __name__ == "__main__":
    main()
