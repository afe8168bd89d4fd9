"""cgjax against chemtrain 0.2.0 on the shipped spce_512 data, back to back in one run.

Both codes train on the same 512-bead SPC/E frames (cubic box 2.4859 nm,
18.0154 amu, 300 K; positions nm, forces kJ/mol/nm, float32), one task per
subprocess so each task's peak RSS is its own. chemtrain runs in its own
virtual environment (``--chemtrain-python``, or ``--make-venv DIR`` creates one
with ``pip install chemtrain``), driven by ``benchmarks/_chemtrain_worker.py``;
cgjax runs this file with ``--worker TASK`` under the current Python. Inputs
travel as ``data.npz`` + ``settings.json`` in a work directory, results come
back as one JSON per task. Both sides get the same environment (JAX on CPU,
float32, one host device, the same XLA flags and thread count).

- **force matching**: chemtrain's DimeNet++ (``jax_md_mod``'s
  ``dimenetpp_neighborlist`` through ``trainers.ForceMatching``) and cgjax's
  models of comparable size (``train.force_matching``), the same train and
  validation frames, cutoff, batch, Adam step and number of updates: s per update
  (median, compile excluded), frames/s, peak RSS, validation force RMSE (kJ/mol/nm).
- **structure matching** from one LJ start (sigma 0.30 nm, epsilon 0.60 kJ/mol,
  cutoff 0.9 nm, switched over its last 0.05 nm) against the AA RDF (0.01 nm bins,
  Gaussian smearing 0.01 nm, 0-1 nm), each method updating until the same wall
  budget (setup and compile included) is spent: chemtrain's ``trainers.Difftre``,
  cgjax's ``train.difftre_trainer`` (same sampling protocol and ESS threshold) and
  cgjax's adjoint RDF loss (``train.trajectory_matching``); s per update, simulated
  ps per update, and the RDF TAE (Å) of the final parameters, all sampled by one
  common Nose-Hoover run (cgjax's ``simulate.sample``, histogram RDF).
- **MD**: Nose-Hoover steps/s with each force-matched model.

    python benchmarks/vs_chemtrain.py --chemtrain-python /work/venv-chemtrain/bin/python
    python benchmarks/vs_chemtrain.py --make-venv /tmp/venv-ct [--quick] [--json out.json]
    python benchmarks/vs_chemtrain.py --report out.json    # the tables of an earlier run

Ratios are cgjax / chemtrain (> 1: cgjax faster), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_chemtrain_worker.py"

#: cgjax force-matching models: name -> (potentials class name, hyperparameters). The cutoff
#: (``--cutoff``, nm) is added at run time. SchNet is sized to DimeNet++'s parameter count at
#: the defaults (embed 16, 2 blocks: 18.6k), NequIP is force_matching.py's (20k params).
FM_MODELS = {
    "schnet": ("SchNet", dict(n_species=1, embed_dim=32, n_filters=32, n_interactions=3,
                              n_rbf=32, output_features=(32,))),  # fmt: skip
    "nequip": ("NequIP", dict(n_species=1, l_max=1, n_features=16, n_layers=2, n_rbf=8,
                              radial_features=(64, 64), avg_num_neighbors=17.5)),  # fmt: skip
    "gnn": ("GNN", dict(n_species=1, embed_dim=16, message_dim=16, n_layers=2, n_rbf=20)),
}
TASKS_CHEMTRAIN = ("fm", "difftre", "md")
TASKS_CGJAX = ("fm", "md", "difftre", "adjoint", "eval")


# --------------------------------------------------------------------------- arguments


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; errors name the flag (argparse exits with status 2)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--chemtrain-python", help="Python of a venv with chemtrain installed")
    src.add_argument("--make-venv", metavar="DIR",
                     help="create DIR with python3 -m venv and pip install chemtrain")  # fmt: skip
    src.add_argument("--report", metavar="JSON", help="print the tables of an earlier --json")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one cgjax task
    p.add_argument("--workdir", help="work directory (default: a fresh temporary one)")
    p.add_argument("--quick", action="store_true", help="tiny run (~5 min) to check the set-up")
    p.add_argument("--fm-models", default="schnet,nequip",
                   help=f"cgjax force-matching models, of {','.join(FM_MODELS)}")  # fmt: skip
    p.add_argument("--fm-updates", type=int, default=20, help="force-matching updates per model")
    p.add_argument("--batch-size", type=int, default=4, help="frames per force-matching update")
    p.add_argument("--train-frames", type=int, default=200)
    p.add_argument("--val-frames", type=int, default=40)
    p.add_argument("--cutoff", type=float, default=0.5, help="NN cutoff (nm)")
    p.add_argument("--embed-size", type=int, default=16, help="DimeNet++ embedding size")
    p.add_argument("--blocks", type=int, default=2, help="DimeNet++ interaction blocks")
    p.add_argument("--budget-s", type=float, default=120.0,
                   help="wall budget of each structure-matching method (s)")  # fmt: skip
    p.add_argument("--md-steps", type=int, default=100, help="timed MD steps per model")
    p.add_argument("--eval-steps", type=int, default=2500,
                   help="recorded steps of the common RDF evaluation run")  # fmt: skip
    p.add_argument("--skip", default="", help="comma-separated parts to skip: fm,structure,md")
    p.add_argument("--timeout", type=float, default=1800.0, help="per subprocess (s)")
    p.add_argument("--json", help="write all results to this file")
    args = p.parse_args(argv)
    if args.worker is None and args.report is None and not (args.chemtrain_python
                                                             or args.make_venv):  # fmt: skip
        p.error("give --chemtrain-python PATH or --make-venv DIR (or --report JSON)")
    if args.chemtrain_python and not os.access(args.chemtrain_python, os.X_OK):
        p.error(f"--chemtrain-python {args.chemtrain_python!r} is not an executable file")
    models = [m.strip() for m in args.fm_models.split(",") if m.strip()]
    unknown = [m for m in models if m not in FM_MODELS]
    if unknown or not models:
        p.error(f"--fm-models: unknown {unknown} (known: {', '.join(FM_MODELS)})")
    args.fm_models = models
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - {"fm", "structure", "md"}:
        p.error(f"--skip: unknown parts {sorted(skip - {'fm', 'structure', 'md'})}")
    args.skip = skip
    for name in ("fm_updates", "batch_size", "train_frames", "val_frames", "md_steps",
                 "eval_steps", "embed_size", "blocks"):  # fmt: skip
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.budget_s <= 0 or args.cutoff <= 0:
        p.error("--budget-s and --cutoff must be positive")
    if args.quick:
        args.fm_updates, args.train_frames, args.val_frames = 4, 16, 8
        args.budget_s, args.md_steps, args.eval_steps = 25.0, 25, 250
    if args.val_frames % args.batch_size or args.train_frames < args.batch_size:
        p.error("--val-frames must be a multiple of --batch-size and --train-frames >= it")
    return args


def settings_of(args, temperature_K: float, mass: float) -> dict:
    """The settings both sides read (units: nm, ps, K, kJ/mol, amu)."""
    kB = 0.00831446261815324  # kJ/mol/K
    q = args.quick
    return {
        "seed": 0, "cutoff": args.cutoff, "skin": 0.05, "embed_size": args.embed_size,
        "n_interaction_blocks": args.blocks, "batch_size": args.batch_size, "lr": 1e-3,
        "n_updates": args.fm_updates, "kB": kB, "kT": kB * temperature_K,
        "temperature_K": temperature_K, "mass": mass,
        # structure matching: experiments/structure_methods.py's quick SPC/E settings
        "lj_start": [0.30, 0.60], "lj_cutoff": 0.9, "rdf_r_max": 1.0, "rdf_bins": 100,
        "dt": 0.004, "tau": 0.5, "equilibration_steps": 50 if q else 250,
        "production_steps": 250 if q else 1500, "record_every": 25, "sampling_skin": 0.1,
        "ess_threshold": 0.6, "difftre_lr": 0.02, "rdf_sigma": 0.01,
        "adjoint": {"n_steps": 20 if q else 100, "record_every": 5, "segment_steps": 5},
        "wall_budget_s": args.budget_s, "md_steps": args.md_steps, "md_dt": 0.002,
        "eval_steps": args.eval_steps, "fm_models": list(args.fm_models),
    }  # fmt: skip


# --------------------------------------------------------------------------- subprocesses


def worker_env() -> dict:
    """The environment of every subprocess: the same JAX/XLA settings on both sides."""
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu", JAX_ENABLE_X64="0", CUDA_VISIBLE_DEVICES="",
               XLA_FLAGS="--xla_force_host_platform_device_count=1",
               PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2")  # fmt: skip
    return env


def run_task(side: str, task: str, python: str, wd: Path, timeout: float) -> dict:
    """Runs one task in a subprocess; its JSON result, or ``{"error": ...}`` naming what failed."""
    name = f"{side}_{task.replace(':', '_')}"
    if side == "chemtrain":
        cmd = [python, str(WORKER), task, str(wd)]
        env = {k: v for k, v in worker_env().items() if k != "PYTHONPATH"}
    else:
        cmd = [python, str(Path(__file__).resolve()), "--worker", task, "--workdir", str(wd)]
        env = worker_env()
    t0 = time.perf_counter()
    print(f"  [{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"side": side, "task": task, "error": f"timed out after {timeout:g} s"}
    (wd / f"{name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return parse_result(wd / f"{name}.json", proc.returncode, proc.stderr, side, task,
                        time.perf_counter() - t0)  # fmt: skip


def parse_result(path: Path, returncode: int, stderr: str, side: str, task: str,
                 wall: float = float("nan")) -> dict:  # fmt: skip
    """A task's result JSON, or ``{"error": ...}`` with the exit status and stderr's last lines."""
    if returncode == 0 and path.exists():
        try:
            out = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            return {"side": side, "task": task, "error": f"{path.name}: bad JSON ({err})"}
        out.setdefault("side", side)
        out.setdefault("task", task)
        out["process_wall_s"] = wall
        return out
    tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-6:]
    why = "no result file" if returncode == 0 else f"exit status {returncode}"
    return {"side": side, "task": task, "error": f"{why}: " + " | ".join(tail)}


def make_venv(path: str) -> str:
    """``python3 -m venv PATH`` + ``pip install chemtrain``; the venv's Python."""
    py = Path(path) / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "chemtrain"], check=True)
    return str(py)


# --------------------------------------------------------------------------- results


def _ok(r: dict | None) -> bool:
    return bool(r) and "error" not in r


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def _row(name: str, r: dict, baseline: dict | None, rate: str, fields: dict,
         optional: tuple = ()) -> dict:
    """One table row of a task's result: ``fields`` (row key -> result key), the
    ``optional`` keys if present, and ``rate`` over chemtrain's (or the error)."""
    if not _ok(r):
        return {"side": r.get("side"), "model": name, "error": r.get("error")}
    row = {"side": r["side"], "model": r["model"]}
    row.update({k: r[v] for k, v in fields.items()})
    row.update({k: r.get(k) for k in optional})
    row["speed_ratio"] = _ratio(r[rate], baseline[rate]) if _ok(baseline) else None
    return row


def summarize(results: dict) -> dict:
    """Tables (lists of row dicts) and ratios from ``results["tasks"]`` (name -> task result).

    Speed ratios are cgjax / chemtrain of frames/s, updates/s or steps/s (> 1: cgjax
    faster); accuracy is given side by side (force RMSE kJ/mol/nm, RDF TAE Å).
    """
    t = results["tasks"]
    ct_fm, ct_md = t.get("chemtrain_fm"), t.get("chemtrain_md")
    fm, md, st = [], [], []
    for name, r in t.items():
        if r.get("task", "").startswith("fm") or name == "chemtrain_fm":
            fm.append(_row(name, r, ct_fm, "frames_per_s", {
                "params": "n_params", "s_per_update": "s_per_update",
                "frames_per_s": "frames_per_s", "peak_rss_gb": "peak_rss_gb",
                "val_force_rmse": "val_force_rmse", "first_update_s": "first_update_s"}))
        elif r.get("task", "").startswith("md") or name == "chemtrain_md":
            md.append(_row(name, r, ct_md, "steps_per_s", {
                "steps_per_s": "steps_per_s", "peak_rss_gb": "peak_rss_gb",
                "finite": "finite"}, optional=("temperature_K",)))  # fmt: skip
    ev = t.get("cgjax_eval", {})
    taes = ev.get("rdf_tae_A", {}) if _ok(ev) else {}
    ct_st = t.get("chemtrain_difftre")
    for name in ("chemtrain_difftre", "cgjax_difftre", "cgjax_adjoint"):
        r = t.get(name)
        if r is None:
            continue
        if not _ok(r):
            st.append({"side": r.get("side"), "method": name, "error": r.get("error")})
            continue
        ups = 1.0 / r["s_per_update"] if r.get("s_per_update") else None
        ct_ups = 1.0 / ct_st["s_per_update"] if _ok(ct_st) and ct_st.get("s_per_update") else None
        st.append({"side": r["side"], "method": r["method"], "updates": r["updates"],
                   "wall_s": r["wall_s"], "setup_s": r.get("setup_s"),
                   "s_per_update": r.get("s_per_update"), "ps_per_update": r.get("ps_per_update"),
                   "simulated_ps": r.get("simulated_ps"), "peak_rss_gb": r["peak_rss_gb"],
                   "sigma_nm": r["sigma_nm"], "epsilon_kJ_per_mol": r["epsilon_kJ_per_mol"],
                   "rdf_tae_A": taes.get(name), "speed_ratio": _ratio(ups, ct_ups)})  # fmt: skip
    return {"fm": fm, "structure": st, "md": md, "start_rdf_tae_A": taes.get("start")}


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    """A markdown table of ``rows`` over ``cols``; rows with ``error`` print it in one cell."""
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if "error" in r:
            cells = [_cell(r.get(cols[0])), _cell(r.get(cols[1])), f"FAILED: {r['error']}"]
            cells += [""] * (len(cols) - 3)
        else:
            cells = [_cell(r.get(c)) for c in cols]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def report(results: dict) -> str:
    """The three tables and the run's context (load, versions, command)."""
    s = summarize(results)
    m = results.get("meta", {})
    lines = [f"command: {m.get('command', '?')}",
             f"load average before/after (1, 5, 15 min): {m.get('loadavg_start')} / "
             f"{m.get('loadavg_end')}; CPUs {m.get('cpu_count')}",
             f"cgjax side: {m.get('cgjax_versions')}",
             f"chemtrain side: {m.get('chemtrain_versions')}", "",
             "force matching (ratio: cgjax frames/s / chemtrain frames/s)",
             markdown_table(s["fm"], ["side", "model", "params", "s_per_update", "frames_per_s",
                                      "speed_ratio", "first_update_s", "peak_rss_gb",
                                      "val_force_rmse"]), "",
             f"structure matching (start RDF TAE {_cell(s['start_rdf_tae_A'])} A; ratio: "
             "updates/s over chemtrain DiffTRe's)",
             markdown_table(s["structure"], ["side", "method", "updates", "wall_s", "setup_s",
                                             "s_per_update", "speed_ratio", "ps_per_update",
                                             "simulated_ps", "peak_rss_gb", "sigma_nm",
                                             "epsilon_kJ_per_mol", "rdf_tae_A"]), "",
             "MD with the force-matched models (ratio: steps/s over chemtrain's)",
             markdown_table(s["md"], ["side", "model", "steps_per_s", "speed_ratio",
                                      "peak_rss_gb", "finite", "temperature_K"])]  # fmt: skip
    return "\n".join(lines)


# --------------------------------------------------------------------------- cgjax side


def write_inputs(wd: Path, args) -> dict:
    """``data.npz`` and ``settings.json`` in ``wd`` from the shipped spce_512 data."""
    import numpy as np

    from cgjax import datasets, observables

    frames = datasets.load("spce_512", wrapped=True)
    obs = datasets.load_observables("spce_512")
    X = np.asarray(frames.positions, np.float32)
    F = np.asarray(frames.forces, np.float32)
    n_tr, n_va = args.train_frames, args.val_frames
    if n_tr + n_va > len(X):
        raise ValueError(f"spce_512 has {len(X)} frames; asked for {n_tr} + {n_va}")
    # training frames from the first 80 %, validation from the last 20 %, evenly strided
    tr = np.linspace(0, int(0.8 * len(X)) - 1, n_tr).astype(int)
    va = np.linspace(int(0.8 * len(X)), len(X) - 1, n_va).astype(int)
    r_aa, g_aa = np.asarray(obs["rdf"]["r_nm"]), np.asarray(obs["rdf"]["g"])
    r, g = observables.rebin_rdf(r_aa, g_aa, 2)  # 0.005 -> 0.01 nm bins
    keep = r < 1.0
    box = np.asarray(frames.box, np.float64)
    np.savez(wd / "data.npz", train_positions=X[tr], train_forces=F[tr], val_positions=X[va],
             val_forces=F[va], R0=X[-1], box_lengths=np.diag(box).astype(np.float32),
             rdf_r_aa=r_aa, rdf_g_aa=g_aa, rdf_r=r[keep], rdf_g=g[keep])  # fmt: skip
    s = settings_of(args, float(frames.temperature), float(np.asarray(frames.masses)[0]))
    (wd / "settings.json").write_text(json.dumps(s, indent=1))
    return s


def _versions() -> dict:
    from importlib.metadata import version

    import jax

    out = {"python": sys.version.split()[0], "jax": jax.__version__}
    for name in ("jaxlib", "jax-md", "flax", "optax", "diffrax", "numpy"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001
            out[name] = "?"
    return out


def _data(wd: Path):
    import numpy as np

    return dict(np.load(wd / "data.npz")), json.loads((wd / "settings.json").read_text())


def _system(d, s):
    import numpy as np

    from cgjax import simulate

    n = d["R0"].shape[0]
    return simulate.System.create(box=np.diag(d["box_lengths"]), species=np.zeros(n, np.int32),
                                  masses=np.full(n, s["mass"], np.float32))  # fmt: skip


def _fm_model(name, d, s):
    from cgjax import potentials

    cls, hp = FM_MODELS[name]
    return potentials.energy_model(getattr(potentials, cls)(cutoff=s["cutoff"], **hp),
                                   system=_system(d, s))  # fmt: skip


def cg_fm(wd: Path, name: str) -> dict:
    """Force matching of one cgjax model: the same frames, batch, Adam step and updates."""
    import pickle

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from cgjax import allocate_neighbor_list, train

    d, s = _data(wd)
    model = _fm_model(name, d, s)
    Xtr, Ftr, Xva, Fva = (d[k] for k in ("train_positions", "train_forces", "val_positions",
                                         "val_forces"))  # fmt: skip
    nb = allocate_neighbor_list(model, np.concatenate([Xtr, Xva]))
    B = int(s["batch_size"])
    trainer = train.force_matching(model, optax.adam(float(s["lr"])), batch_size=B, neighbor=nb)
    params = model.init_fn(jax.random.key(int(s["seed"])), jnp.asarray(Xtr[0]), neighbor=nb)
    state = trainer.init_fn(jax.random.key(int(s["seed"])), params)
    rng = np.random.default_rng(int(s["seed"]))
    order, stamps, finite, overflow = np.array([], int), [], True, False
    t0 = time.perf_counter()
    for _ in range(int(s["n_updates"])):
        if len(order) < B:  # epochs of shuffled frames, as chemtrain's loader draws them
            order = np.concatenate([order, rng.permutation(len(Xtr))])
        idx, order = order[:B], order[B:]
        state, m = trainer.update_fn(state, {"positions": jnp.asarray(Xtr[idx]),
                                             "forces": jnp.asarray(Ftr[idx])})  # fmt: skip
        finite &= bool(m["finite"])  # fetching the metrics waits for the update
        overflow |= bool(m["overflow"])
        stamps.append(time.perf_counter())
    wall = time.perf_counter() - t0
    sse = cnt = 0.0
    for i in range(0, len(Xva), B):
        e = trainer.eval_fn(state.params, {"positions": jnp.asarray(Xva[i:i + B]),
                                           "forces": jnp.asarray(Fva[i:i + B])})  # fmt: skip
        sse, cnt = sse + float(e["sse"]), cnt + float(e["count"])
    steps = np.diff([t0, *stamps])
    per = float(np.median(steps[1:] if len(steps) > 1 else steps))
    with open(wd / f"cgjax_fm_{name}_params.pkl", "wb") as f:
        pickle.dump(jax.device_get(state.params), f)
    cls, hp = FM_MODELS[name]
    return {"model": f"cgjax {cls}", "hyperparameters": {**hp, "cutoff": s["cutoff"]},
            "n_params": int(sum(np.size(x) for x in jax.tree.leaves(params))),
            "neighbor_capacity": int(nb.idx.shape[-1]), "updates": len(stamps),
            "first_update_s": float(steps[0]), "s_per_update": per, "frames_per_s": B / per,
            "train_wall_s": wall, "val_force_rmse": float(np.sqrt(sse / cnt)),
            "val_frames": int(len(Xva)), "finite": finite, "overflow": overflow}  # fmt: skip


def cg_md(wd: Path, name: str) -> dict:
    """Nose-Hoover MD with one force-matched cgjax model (cgjax's runner): steps/s."""
    import pickle

    import jax.numpy as jnp
    import numpy as np

    from cgjax import simulate

    d, s = _data(wd)
    model = _fm_model(name, d, s)
    with open(wd / f"cgjax_fm_{name}_params.pkl", "rb") as f:
        params = pickle.load(f)
    every = int(s["record_every"])
    p = simulate.Protocol(temperature=s["temperature_K"], dt=s["md_dt"], tau=s["tau"],
                          equilibration_steps=every, production_steps=int(s["md_steps"]),
                          record_every=every, skin=s["skin"], seed=int(s["seed"]))  # fmt: skip
    t0 = time.perf_counter()
    out = simulate.sample(model, params, jnp.asarray(d["R0"]), p, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = simulate.sample(model, params, out, p, progress=False)
    np.asarray(out.trajectory.positions)
    wall = time.perf_counter() - t0
    X = np.asarray(out.trajectory.positions)
    T = getattr(out.trajectory, "temperature", None)
    return {"model": f"cgjax {FM_MODELS[name][0]} (force-matched)",
            "steps": every + int(s["md_steps"]), "first_call_s": first,
            "steps_per_s": (every + int(s["md_steps"])) / wall,
            "finite": bool(np.all(np.isfinite(X))),
            "temperature_K": None if T is None else float(np.mean(np.asarray(T)))}  # fmt: skip


def _lj(d, s):
    import jax
    import jax.numpy as jnp

    from cgjax import potentials

    cut = float(s["lj_cutoff"])
    sigma, eps = s["lj_start"]
    lj = potentials.LennardJones(n_species=1, sigma=sigma, epsilon=eps, cutoff=cut,
                                 r_onset=cut - 0.05)  # fmt: skip
    model = potentials.energy_model(lj, system=_system(d, s))
    return model, model.init_fn(jax.random.key(0), jnp.asarray(d["R0"]))


def _protocol(s, steps=None, seed_offset=0):
    from cgjax import simulate

    return simulate.Protocol(temperature=s["temperature_K"], dt=s["dt"], tau=s["tau"],
                             equilibration_steps=int(s["equilibration_steps"]),
                             production_steps=int(steps or s["production_steps"]),
                             record_every=int(s["record_every"]), skin=s["sampling_skin"],
                             seed=int(s["seed"]) + seed_offset)  # fmt: skip


def _relative_adam(lr):
    import optax

    return optax.chain(optax.scale_by_adam(b1=0.5), optax.scale_by_param_block_rms(),
                       optax.scale_by_learning_rate(lr))  # fmt: skip


def _lj_values(params) -> dict:
    import numpy as np

    return {"sigma_nm": float(np.asarray(params["sigma"]).ravel()[0]),
            "epsilon_kJ_per_mol": float(np.asarray(params["epsilon"]).ravel()[0])}  # fmt: skip


def cg_structure(wd: Path, method: str) -> dict:
    """cgjax's DiffTRe or adjoint RDF training, updating until the wall budget is spent."""
    import jax
    import jax.numpy as jnp

    from cgjax import losses, simulate, train

    d, s = _data(wd)
    t0 = time.perf_counter()
    model, p0 = _lj(d, s)
    R0 = jnp.asarray(d["R0"])
    if method == "difftre":
        target = train.rdf_target(d["rdf_r"], d["rdf_g"], model.system.box, sigma=s["rdf_sigma"])
        trainer = train.difftre_trainer(model, [target], _relative_adam(s["difftre_lr"]),
                                        _protocol(s), R0, settings=train.DiffTReSettings(
                                            ess_threshold=float(s["ess_threshold"])))  # fmt: skip
        ps_of = lambda st, n: float(st.simulated_ps)  # noqa: E731
    else:
        a = s["adjoint"]
        p = simulate.Protocol(temperature=s["temperature_K"], dt=s["dt"], tau=s["tau"],
                              production_steps=int(a["n_steps"]),
                              record_every=int(a["record_every"]), skin=s["sampling_skin"],
                              seed=int(s["seed"]))  # fmt: skip
        V0 = simulate.maxwell_boltzmann(jax.random.key(int(s["seed"])), model.system, p.kT)
        spec = simulate.TrajectorySpec(model, R0, V0, p, adjoint=simulate.Checkpoint(
            segment_steps=int(a["segment_steps"])))  # fmt: skip
        loss = losses.rdf_loss(d["rdf_r"], d["rdf_g"], simulate=spec, sigma=s["rdf_sigma"])
        trainer = train.trajectory_matching(loss, _relative_adam(s["difftre_lr"]))
        ps_of = lambda st, n: n * p.production_steps * p.dt  # noqa: E731
    setup_s = time.perf_counter() - t0
    state, stamps, history = p0, [], []
    # at least two updates, so a median without the first (compiling) one exists
    while len(stamps) < 2 or time.perf_counter() - t0 < float(s["wall_budget_s"]):
        t1 = time.perf_counter()
        fit = train.fit_sampling(trainer, state, 1)
        state = fit.state
        stamps.append(time.perf_counter() - t1)
        history.append(_lj_values(state.params))
    n = max(len(stamps), 1)
    return {"method": f"cgjax {'DiffTRe' if method == 'difftre' else 'adjoint RDF'}",
            "updates": len(stamps), "setup_s": setup_s, "wall_s": time.perf_counter() - t0,
            "s_per_update": float(statistics.median(stamps[1:] or stamps)) if stamps else None,
            "simulated_ps": ps_of(state, len(stamps)),
            "ps_per_update": ps_of(state, len(stamps)) / n,
            **_lj_values(state.params), "history": history}  # fmt: skip


def cg_eval(wd: Path) -> dict:
    """The RDF TAE (Å, 0-1 nm, 0.01 nm bins) of every method's final LJ, one common protocol."""
    import jax.numpy as jnp
    import numpy as np

    from cgjax import observables, simulate, train

    d, s = _data(wd)
    model, p0 = _lj(d, s)
    fits = {"start": p0}
    for name in ("chemtrain_difftre", "cgjax_difftre", "cgjax_adjoint"):
        path = wd / f"{name}.json"
        if path.exists():
            r = json.loads(path.read_text())
            fits[name] = {**p0, "sigma": jnp.full_like(p0["sigma"], r["sigma_nm"]),
                          "epsilon": jnp.full_like(p0["epsilon"], r["epsilon_kJ_per_mol"])}
    p = _protocol(s, steps=int(s["eval_steps"]), seed_offset=7)
    taes, rdfs, failed = {}, {}, {}
    for name, params in fits.items():
        if not all(np.isfinite(float(np.ravel(params[k])[0])) for k in ("sigma", "epsilon")):
            taes[name], failed[name] = None, "non-finite parameters"
            continue
        try:
            out = simulate.sample(model, params, jnp.asarray(d["R0"]), p, progress=False)
        except simulate.SimulationError as err:
            taes[name], failed[name] = None, str(err)
            continue
        g = np.asarray(observables.rdf(out.trajectory.positions, model.system.box, r_max=1.0,
                                       n_bins=len(d["rdf_r"])).g)  # fmt: skip
        taes[name], rdfs[name] = train.rdf_tae_A(d["rdf_r"], d["rdf_g"], g), g.tolist()
    return {"method": "common evaluation", "rdf_tae_A": taes, "rdf": rdfs, "failed": failed,
            "eval_protocol": str(p)}  # fmt: skip


def worker(task: str, wd: Path) -> None:
    """Runs one cgjax task and writes ``cgjax_TASK.json`` (``:`` -> ``_``)."""
    import resource

    import jax

    t0 = time.perf_counter()
    kind, _, name = task.partition(":")
    if kind == "fm":
        out = cg_fm(wd, name)
    elif kind == "md":
        out = cg_md(wd, name)
    elif kind in ("difftre", "adjoint"):
        out = cg_structure(wd, kind)
    elif kind == "eval":
        out = cg_eval(wd)
    else:
        raise SystemExit(f"unknown worker task {task!r}; known: {TASKS_CGJAX}")
    out.update(task=task, side="cgjax", total_s=time.perf_counter() - t0,
               peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               versions=_versions(), backend=jax.default_backend(),
               devices=[str(dv) for dv in jax.devices()])  # fmt: skip
    (wd / f"cgjax_{task.replace(':', '_')}.json").write_text(json.dumps(out, indent=1))


# --------------------------------------------------------------------------- driver


def plan(args) -> list[tuple[str, str]]:
    """(side, task) in run order: chemtrain and cgjax alternate within each part."""
    out = []
    if "fm" not in args.skip:
        out.append(("chemtrain", "fm"))
        out += [("cgjax", f"fm:{m}") for m in args.fm_models]
    if "structure" not in args.skip:
        out += [("chemtrain", "difftre"), ("cgjax", "difftre"), ("cgjax", "adjoint"),
                ("cgjax", "eval")]  # fmt: skip
    if "md" not in args.skip and "fm" not in args.skip:
        out.append(("chemtrain", "md"))
        out += [("cgjax", f"md:{m}") for m in args.fm_models]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, Path(args.workdir))
        return 0
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return 0
    ct_python = args.chemtrain_python or make_venv(args.make_venv)
    wd = Path(args.workdir or tempfile.mkdtemp(prefix="vs_chemtrain_"))
    wd.mkdir(parents=True, exist_ok=True)
    print(f"vs_chemtrain: work directory {wd}")
    settings = write_inputs(wd, args)
    cmd = " ".join(["python", "benchmarks/vs_chemtrain.py", *(argv or sys.argv[1:])])
    meta = {"command": cmd, "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "cpu_count": os.cpu_count(), "settings": settings,
            "env": {k: worker_env()[k] for k in ("JAX_PLATFORMS", "XLA_FLAGS", "JAX_ENABLE_X64")}}
    results = {"meta": meta, "tasks": {}}
    t0 = time.perf_counter()
    for side, task in plan(args):
        py = ct_python if side == "chemtrain" else sys.executable
        r = run_task(side, task, py, wd, args.timeout)
        results["tasks"][f"{side}_{task.replace(':', '_')}"] = r
        msg = r.get("error") or f"done in {r.get('process_wall_s', float('nan')):.0f} s"
        print(f"    {msg}", flush=True)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["total_s"] = time.perf_counter() - t0
    for side in ("cgjax", "chemtrain"):
        v = next((r["versions"] for r in results["tasks"].values()
                  if r.get("side") == side and "versions" in r), None)  # fmt: skip
        meta[f"{side}_versions"] = v
    print()
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
