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
``results.json``, ``plots/`` and whatever the experiment writes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from cgjax.config import (
    apply_override,
    help_lines,
    json_ready,
    load_config,
    load_module,
    undocumented_keys,
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


def main(argv: list[str] | None = None) -> dict:
    """Runs ``python -m cgjax.run`` with ``argv`` (default ``sys.argv[1:]``); see the module."""
    a = _parse_argv(list(sys.argv[1:] if argv is None else argv))
    positional, config_spec, workdir = a["positional"], a["config_spec"], a["workdir"]
    overrides, sweeps, flags = a["overrides"], a["sweeps"], a["flags"]
    if not positional:
        print(__doc__)
        raise SystemExit(0 if flags["--help"] else 2)
    if len(positional) > 1:
        raise SystemExit(f"one experiment file expected, got {positional}")
    path = positional[0]
    if not os.path.isfile(path):
        raise SystemExit(f"experiment file not found: {path}")
    experiment = load_module(path)
    if not hasattr(experiment, "main"):
        raise SystemExit(f"{path} must define main(config, workdir)")
    try:
        config, descriptions = load_config(path, config_spec)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}") from None
    try:
        for key, val in overrides:
            apply_override(config, key, val)
    except (KeyError, TypeError) as e:
        raise SystemExit(f"error: {e.args[0]}") from None
    if flags["--help"]:
        print(f"config keys of {path} (defaults{' of ' + config_spec if config_spec else ''}):")
        print("\n".join(help_lines(config, descriptions)))
        problems = undocumented_keys(config, descriptions)
        if problems:
            raise SystemExit(
                f"error: config keys without a one-line meaning and [unit] in the config "
                f"file's HELP: {problems}"
            )
        return {}
    name = os.path.splitext(os.path.basename(path))[0]
    workdir = workdir or os.path.join("runs", name)
    os.makedirs(workdir, exist_ok=True)
    snapshot = json_ready(config.to_dict())
    if sweeps:
        if not hasattr(experiment, "sweep_group"):
            raise SystemExit(f"{path} defines no sweep_group(configs, workdir): it cannot sweep")
        snapshot = {"config": snapshot, "sweep": sweeps}
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

        try:  # every value is checked before any work starts
            sweep.expand(config, [sweep.parse_sweep(s) for s in sweeps])
        except (KeyError, TypeError, ValueError) as e:
            raise SystemExit(f"error: {e.args[0]}") from None
        sweep.init_distributed()
    with open(cfg_path, "w") as f:
        json.dump(snapshot, f, indent=2)
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
