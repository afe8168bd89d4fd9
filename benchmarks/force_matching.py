"""Force-matching training throughput of every cgjax model on 512-bead SPC/E water, one run.

Each model is bound to the shipped ``spce_512`` dataset (512 COM water beads,
fixed cubic box of 2.486 nm, float32), given a neighbor list wide enough for
the frames used (``cgjax.allocate_neighbor_list``) and a trainer
``train.force_matching(model, optax.adam(1e-3), batch_size=B, neighbor=nb)``.
After a warm-up call (its time, compile included, is reported separately) the
jitted ``update_fn`` (energy, forces = -grad, parameter gradients, Adam step,
neighbor lists rebuilt per frame) and ``eval_fn`` (forces only) are timed
call by call with ``jax.block_until_ready``; the median call gives ms/update
and frames/s. The baseline, measured in the same process, is the pairwise
cubic-spline model (``SplinePair``, the MS-CG model); the ratio column is
``model frames/s / spline frames/s`` (training).

    python benchmarks/force_matching.py [--batch-size 4] [--repeats 20]
        [--models spline,lj,gnn,...] [--frames 32] [--json out.json]
"""

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgjax import allocate_neighbor_list, datasets, potentials, train

# Water's bead density (33.4 nm^-3) times the 0.6 nm cutoff sphere: ~30 neighbours.
NN_CUTOFF = 0.6  # nm; papers 000 and 002 use 6-7 Å
AVG_NEIGHBORS = 30.0

# name -> (constructor, hyperparameters). Pair models keep their usual 1.0 nm
# range (the MS-CG spline of paper 003, the SPC/E oxygen LJ of paper 004);
# the NN models use NN_CUTOFF and the papers' widths where they fit a CPU.
MODELS = {
    "spline": (
        potentials.SplinePair,
        dict(n_basis=24, r_min=0.2, cutoff=1.0),
    ),
    "lj": (
        potentials.LennardJones,
        dict(sigma=0.3166, epsilon=0.650, cutoff=1.0, r_onset=0.9),
    ),
    "gnn": (  # paper 004 §2.1
        potentials.GNN,
        dict(n_species=1, embed_dim=16, message_dim=16, n_layers=2, n_rbf=20, cutoff=NN_CUTOFF),
    ),
    "schnet": (  # paper 001 (CGSchNet); widths ours
        potentials.SchNet,
        dict(
            n_species=1,
            embed_dim=64,
            n_filters=64,
            n_interactions=3,
            n_rbf=50,
            cutoff=NN_CUTOFF,
            output_features=(64,),
        ),
    ),
    "deeppot": (  # paper 000 Script 1 / paper 002, cutoff 0.6 nm instead of 0.7
        potentials.DeepPotSE,
        dict(
            n_species=1,
            cutoff=NN_CUTOFF,
            r_onset=0.1,
            embedding_features=(8, 16, 32),
            axis_features=4,
            fitting_features=(32, 32, 32),
            neighbor_norm=60.0,
        ),
    ),
    "hipnn": (  # paper 003 (l = 2, 1 interaction, 3 atom layers, 20 sensitivities)
        potentials.HIPNN,
        dict(
            n_species=1,
            n_features=32,
            n_interactions=1,
            n_atom_layers=3,
            n_sensitivities=20,
            sensitivity_min=0.25,
            sensitivity_max=NN_CUTOFF,
            cutoff=NN_CUTOFF,
            tensor_order=2,
        ),
    ),
    "nequip": (  # paper 000's l_max and radial basis; 16 channels, 2 layers for a CPU
        potentials.NequIP,
        dict(
            n_species=1,
            cutoff=NN_CUTOFF,
            l_max=1,
            n_features=16,
            n_layers=2,
            n_rbf=8,
            radial_features=(64, 64),
            avg_num_neighbors=AVG_NEIGHBORS,
        ),
    ),
    "allegro": (  # paper 000 Script 2
        potentials.Allegro,
        dict(
            n_species=1,
            cutoff=NN_CUTOFF,
            l_max=1,
            n_features=2,
            n_layers=1,
            n_rbf=8,
            two_body_features=(8, 16, 32),
            latent_features=(32, 32, 32),
            edge_features=(8,),
            avg_num_neighbors=AVG_NEIGHBORS,
        ),
    ),
}
BASELINE = "spline"


def timed_calls(fn, n):
    """Median wall time (s) of ``n`` calls of ``fn()``, each synchronised."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(name, frames, args):
    cls, hparams = MODELS[name]
    model = potentials.energy_model(cls(**hparams), species=frames.species, box=frames.box)
    positions = np.asarray(frames.positions[: args.frames], np.float32)
    forces = np.asarray(frames.forces[: args.frames], np.float32)
    nb = allocate_neighbor_list(model, positions)
    trainer = train.force_matching(model, optax.adam(1e-3), batch_size=args.batch_size, neighbor=nb)
    B = args.batch_size
    batches = [
        {"positions": jnp.asarray(positions[i : i + B]), "forces": jnp.asarray(forces[i : i + B])}
        for i in range(0, len(positions) - B + 1, B)
    ]
    params = model.init_fn(jax.random.key(0), batches[0]["positions"][0], neighbor=nb)
    n_params = sum(int(np.size(x)) for x in jax.tree.leaves(params))
    state = trainer.init_fn(jax.random.key(1), params)

    t0 = time.perf_counter()
    state, metrics = jax.block_until_ready(trainer.update_fn(state, batches[0]))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(trainer.eval_fn(state.params, batches[0]))
    eval_compile_s = time.perf_counter() - t0

    k = [0]
    ok = {"overflow": False, "finite": True}

    def update():
        nonlocal state
        k[0] += 1
        state, m = trainer.update_fn(state, batches[k[0] % len(batches)])
        ok["overflow"] |= bool(m["overflow"])
        ok["finite"] &= bool(m["finite"])
        return state

    def evaluate():
        k[0] += 1
        out = trainer.eval_fn(state.params, batches[k[0] % len(batches)])
        ok["overflow"] |= bool(out["overflow"])
        return out

    update_s = timed_calls(update, args.repeats)
    eval_s = timed_calls(evaluate, args.repeats)
    return {
        "model": name,
        "hyperparameters": hparams,
        "n_params": n_params,
        "neighbor_capacity": int(nb.idx.shape[-1]),
        "neighbor_format": str(nb.format.name),
        "compile_s": compile_s,
        "eval_compile_s": eval_compile_s,
        "ms_per_update": 1e3 * update_s,
        "train_frames_per_s": B / update_s,
        "ms_per_eval": 1e3 * eval_s,
        "eval_frames_per_s": B / eval_s,
        "overflow": ok["overflow"],
        "finite": ok["finite"] and bool(metrics["finite"]),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=20, help="timed calls per model (median)")
    p.add_argument("--frames", type=int, default=32, help="frames used (cycled through)")
    p.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated, of: " + ",".join(MODELS)
    )
    p.add_argument("--json", default=None, help="write the results to this file")
    args = p.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        p.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    if BASELINE not in names:
        names.insert(0, BASELINE)  # the ratio needs the baseline from the same run
    if args.frames < args.batch_size:
        p.error("--frames must be at least --batch-size")

    frames = datasets.load("spce_512", wrapped=True)
    n_beads = frames.positions.shape[1]
    print(
        f"force-matching throughput, spce_512: {n_beads} CG water beads, "
        f"box {float(frames.box[0, 0]):.4f} nm, float32, batch {args.batch_size}, "
        f"{args.frames} frames, Adam, median of {args.repeats} calls"
    )
    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}, "
        f"CPU count {os.cpu_count()}"
    )
    print("hyperparameters (cutoffs in nm):")
    for name in names:
        print(f"  {name:8s} {MODELS[name][0].__name__}({MODELS[name][1]})")

    rows = []
    for name in names:
        rows.append(bench_model(name, frames, args))
        r = rows[-1]
        print(
            f"  done {name}: {r['ms_per_update']:.1f} ms/update, compile {r['compile_s']:.1f} s",
            flush=True,
        )
    base = next(r for r in rows if r["model"] == BASELINE)
    for r in rows:
        r["ratio_vs_spline"] = r["train_frames_per_s"] / base["train_frames_per_s"]
        r["eval_ratio_vs_spline"] = r["eval_frames_per_s"] / base["eval_frames_per_s"]

    head = (
        f"{'model':8s} {'params':>7s} {'pairs':>6s} {'compile s':>9s} {'ms/update':>10s} "
        f"{'train fr/s':>10s} {'ratio':>7s} {'eval fr/s':>10s} {'eval ratio':>10s}"
    )
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        flag = "" if r["finite"] and not r["overflow"] else "  (!) overflow or non-finite"
        print(
            f"{r['model']:8s} {r['n_params']:7d} {r['neighbor_capacity']:6d} "
            f"{r['compile_s']:9.1f} {r['ms_per_update']:10.1f} {r['train_frames_per_s']:10.2f} "
            f"{r['ratio_vs_spline']:7.3f} {r['eval_frames_per_s']:10.2f} "
            f"{r['eval_ratio_vs_spline']:10.3f}{flag}"
        )
    print(
        "compile s: first update_fn call (compile + one update); pairs: neighbor-list "
        "capacity per frame; ratio: frames/s / spline frames/s"
    )
    if args.json:
        meta = {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(),
            "dataset": "spce_512",
            "batch_size": args.batch_size,
            "frames": args.frames,
            "repeats": args.repeats,
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
