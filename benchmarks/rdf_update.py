"""Wall time of one RDF-training update of the spce_dynamics quick preset, A/B across trees.

One update is what the quick preset's ``rdf_training`` stage repeats: a
differentiable Nose-Hoover trajectory of the paper-004 model (GNN + LJ + HF,
512 SPC/E beads of ``spce_512``, float32) with the preset's protocol (2 fs,
200 steps, a frame every 10, 10-step segments, skin 0.1 nm, checkpoint
adjoint), the Gaussian-smeared RDF loss against the AA RDF, its gradient and
one Adam step, through ``train.trajectory_matching`` exactly as the
experiment builds it. The parameters are the model's initial ones with the
GNN's output layer scaled by 1e-3 (the LJ holds the liquid together): the
cost of an update does not depend on the parameter values, and no training
stage has to run first.

Each ``--trees`` entry (a directory holding a ``cgjax`` package and its
``experiments/``, ``configs/``, e.g. a git worktree of an older commit) runs
in its own child process (this script, with that tree's cgjax imported), alternating
A, B, A, B, ... ``--rounds`` times, so a change in machine load hits both.
A child compiles (the first update, reported as *compile s*), then times
``--updates`` more; the table gives each tree's median over all its rounds
and the ratio to the first tree.

    python benchmarks/rdf_update.py --trees /tmp/old,. [--rounds 2] [--updates 5]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def child(n_updates: int, overrides: list[str]) -> None:
    """Times ``n_updates`` updates after one compiling update; prints RESULT json."""
    import importlib.util

    import jax
    import jax.numpy as jnp
    import optax

    from cgjax import datasets, losses, observables, simulate, train

    # the experiment and config of the tree under test (its cgjax is PYTHONPATH's)
    root = os.environ.get("RDF_UPDATE_TREE") or os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))
    )

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    exp = load("spce_dynamics_exp", os.path.join(root, "experiments", "spce_dynamics.py"))
    config = load("spce_dynamics_cfg", os.path.join(root, "configs", "spce_dynamics.py"))
    config = config.get_config()
    for item in overrides:  # e.g. rdf_train.skin=0.05
        key, value = item.split("=", 1)
        *path, leaf = key.split(".")
        node = config
        for part in path:
            node = node[part]
        node[leaf] = type(node[leaf])(value)
    c = config.rdf_train
    frames = datasets.load(config.dataset, wrapped=True)
    n = frames.n_particles
    system = simulate.System.create(box=frames.box, species=np.zeros(n, np.int32),
                                    masses=np.asarray(frames.masses))  # fmt: skip
    model, _ = exp._build(system, config)
    R0 = jnp.asarray(frames.positions[-1], jnp.float32)
    params = model.init_fn(jax.random.key(0), R0)
    params = {**params, "gnn": jax.tree.map(lambda x: 1e-3 * x, params["gnn"])}
    R, V = exp._equilibrate(model, params, frames.positions[-1], config, 200, float(c.dt),
                            float(c.tau))  # fmt: skip
    obs = datasets.load_observables(config.dataset)
    r_ref, g_ref = exp._reference_rdf(obs, float(config.rdf_r_max))
    r_t, g_t = (jnp.asarray(x) for x in observables.rebin_rdf(r_ref, g_ref, int(c.rebin)))
    protocol = simulate.Protocol(temperature=float(config.temperature), dt=float(c.dt),
                                 tau=float(c.tau), production_steps=int(c.n_steps),
                                 record_every=int(c.record_every), skin=float(c.skin),
                                 seed=0)  # fmt: skip
    adjoint = simulate.Checkpoint(segment_steps=int(c.segment_steps))
    spec = simulate.TrajectorySpec(model, R, V, protocol, adjoint=adjoint)
    loss = losses.rdf_loss(r_t, g_t, simulate=spec, sigma=float(c.sigma),
                           start_frame=int(c.start_frame))  # fmt: skip
    trainer = train.trajectory_matching(loss, optax.adam(float(c.lr), b1=float(c.b1)),
                                        frozen=tuple(k for k in params if k != "gnn"))  # fmt: skip
    state = trainer.init(params)
    t0 = time.perf_counter()
    state, m = trainer.update(state)
    compile_s = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(n_updates):
        t0, c0 = time.perf_counter(), time.process_time()
        state, m = trainer.update(state)
        jax.block_until_ready(state.params)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    out = dict(compile_s=compile_s, wall_s=walls, cpu_s=cpus, loss=float(m["loss"]),
               load=os.getloadavg()[0])  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", default=".", help="comma-separated trees; the first is the baseline")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--updates", type=int, default=5, help="timed updates per child")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every tree, e.g. rdf_train.skin=0.05")
    p.add_argument("--json", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.updates, args.set)
        return
    trees = [os.path.abspath(t) for t in args.trees.split(",")]
    for t in trees:
        if not os.path.isdir(os.path.join(t, "cgjax")):
            sys.exit(f"error: --trees entry {t!r} holds no cgjax package")
    results = {t: [] for t in trees}
    for r in range(args.rounds):
        for t in trees:
            env = {**os.environ, "PYTHONPATH": t, "RDF_UPDATE_TREE": t}
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--updates",
                   str(args.updates)] + [f"--set={kv}" for kv in args.set]  # fmt: skip
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"error: the child for {t} failed:\n{proc.stderr[-3000:]}")
            res = json.loads(lines[-1][len("RESULT "):])
            results[t].append(res)
            print(f"round {r + 1}/{args.rounds} {t}: compile {res['compile_s']:.1f} s, "
                  f"updates {np.round(res['wall_s'], 2).tolist()} s (load {res['load']:.1f})",
                  flush=True)  # fmt: skip
    base = None
    print(f"\n| tree | compile s | update s (median) | update cpu s | ratio to {trees[0]} |")
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for t in trees:
        wall = float(np.median([w for res in results[t] for w in res["wall_s"]]))
        cpu = float(np.median([w for res in results[t] for w in res["cpu_s"]]))
        comp = float(np.median([res["compile_s"] for res in results[t]]))
        base = wall if base is None else base
        summary[t] = dict(update_s=wall, update_cpu_s=cpu, compile_s=comp, speedup=base / wall)
        print(f"| {t} | {comp:.1f} | {wall:.2f} | {cpu:.2f} | {base / wall:.2f}x faster |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(summary=summary, runs=results), f, indent=1)


if __name__ == "__main__":
    main()
