"""Seed sweep: 8 force-matching runs vmapped as one group vs the same 8 runs one after another.

A small GNN (paper 004's architecture, narrower) is fitted to Lennard-Jones
forces of 64 perturbed simple-cubic particles (box 1.52 nm, float32, neighbor
list from ``cgjax.allocate_neighbor_list``), Adam with a cosine decay, batch
4, ``--steps`` updates, seeds ``0..K-1`` (each member's init and batch order
depend on its seed only). Three ways, in one process:

* ``vmapped``: ``sweep.sweep_force_matching`` on all K configs: one
  ``jax.jit(jax.vmap(update))`` (member axis sharded over this process's devices).
* ``sequential sweep(K=1)``: the same function called K times with one config
  each (same code path; each call traces and compiles again, as K separate
  runs would).
* ``sequential train.fit``: ``train.force_matching`` + ``train.fit`` per seed
  with one trainer compiled beforehand (the library's usual single-run path,
  compiled once: the best case for running seeds one by one).

Reported: wall time including compilation, and the update loop without
compilation (updates 2..n: batches drawn, moved and updated, losses fetched;
for ``train.fit``, the whole ``fit`` call with the trainer already compiled,
including its final evaluation); ratios are ``time / vmapped time``.

    python benchmarks/sweep.py [--members 8] [--steps 200] [--devices N] [--json out.json]

On CPU the member axis is sharded over ``--devices`` virtual host devices
(default: one per CPU core; set before JAX is imported, unless ``XLA_FLAGS``
already sets a count). The sequential runs use one device.
"""

import argparse
import json
import os
import sys
import time


def _host_devices() -> int:
    """``--devices N`` (default: the CPU count); read before JAX is imported."""
    for i, a in enumerate(sys.argv):
        if a.startswith("--devices="):
            return int(a.split("=", 1)[1])
        if a == "--devices" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
    return os.cpu_count() or 1


# XLA runs each CPU device on its own thread: the member axis sharded over
# one virtual device per core uses every core (one device runs mostly on one).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={_host_devices()}"
    ).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from cgjax import allocate_neighbor_list, potentials, sweep, train  # noqa: E402

L, SIDE = 1.52, 4  # nm; 4^3 = 64 particles at 0.38 nm spacing (LJ minimum of sigma 0.34)


def problem(n_frames: int = 40):
    g = (np.arange(SIDE) + 0.5) * L / SIDE
    lattice = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(0)
    R = (lattice[None] + rng.normal(0.0, 0.02, (n_frames, len(lattice), 3))).astype(np.float32)
    species = np.zeros(len(lattice), np.int32)
    lj = potentials.energy_model(
        potentials.LennardJones(sigma=0.34, epsilon=1.0, cutoff=0.6), species=species, box=L
    )
    F = np.asarray(jax.vmap(lj.force_fn(lj.init_fn(jax.random.key(0), R[0])))(R))
    gnn = potentials.GNN(n_species=1, embed_dim=8, message_dim=8, n_layers=2, n_rbf=8, cutoff=0.6)
    model = potentials.energy_model(gnn, species=species, box=L)
    nb = allocate_neighbor_list(model, R)
    n_train = n_frames * 4 // 5
    tr = {"positions": R[:n_train], "forces": F[:n_train]}
    va = {"positions": R[n_train:], "forces": F[n_train:]}
    return model, nb, tr, va


def configs(n_members: int, n_steps: int) -> list[ml_collections.ConfigDict]:
    base = ml_collections.ConfigDict()
    base.seed = 0
    base.train = ml_collections.ConfigDict(
        {"lr": 3e-3, "lr_final_fraction": 0.1, "n_steps": n_steps, "batch_size": 4,
         "eval_every": n_steps}
    )  # fmt: skip
    return sweep.expand(base, [("seed", list(range(n_members)))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json", default=None)
    ap.add_argument("--devices", type=int, default=None, help="host devices (default: CPUs)")
    args = ap.parse_args()
    model, nb, tr, va = problem()
    cfgs = configs(args.members, args.steps)
    K, n = args.members, args.steps
    print(f"jax {jax.__version__} {jax.default_backend()}, {jax.local_device_count()} device(s), "
          f"{os.cpu_count()} CPUs; {K} members, {n} updates, batch 4, "
          f"{tr['positions'].shape[1]} particles")  # fmt: skip

    res = sweep.sweep_force_matching(model, tr, va, cfgs, neighbor=nb, keep_params=False)
    rows = [("vmapped", res.wall_s, res.train_s)]
    print(f"vmapped: {res.wall_s:.1f} s incl. compile, update loop {res.train_s:.1f} s, "
          f"member sharding {res.member_sharding}")  # fmt: skip

    singles = []
    one_device = sweep.member_mesh(jax.local_devices()[:1])
    for c in cfgs:
        r = sweep.sweep_force_matching(
            model, tr, va, [c], neighbor=nb, keep_params=False, mesh=one_device
        )
        singles.append(r)
        print(f"  sweep(K=1) seed {c.seed}: {r.wall_s:.1f} s, update loop {r.train_s:.1f} s")
    rows.append(("sequential sweep(K=1)", sum(r.wall_s for r in singles),
                 sum(r.train_s for r in singles)))  # fmt: skip
    for r, s in zip(res.members, singles, strict=True):
        assert abs(r["val_force_rmse"] - s.members[0]["val_force_rmse"]) < 1e-3 * (
            1 + abs(r["val_force_rmse"])
        ), "a member's result changed with its group"

    opt = optax.adam(optax.cosine_decay_schedule(3e-3, n, alpha=0.1))
    single = train.force_matching(model, opt, batch_size=4, neighbor=nb)
    R0 = jnp.asarray(tr["positions"][0])
    t0 = time.perf_counter()
    state = single.init_fn(jax.random.key(0), model.init_fn(jax.random.key(0), R0, neighbor=nb))
    jax.block_until_ready(single.update_fn(state, {k: v[:4] for k, v in tr.items()}))
    train.evaluate(single, state.params, va)
    compile_s = time.perf_counter() - t0
    fit_s = 0.0
    for c in cfgs:
        t0 = time.perf_counter()
        key = jax.random.key(c.seed)
        state = single.init_fn(key, model.init_fn(key, R0, neighbor=nb))
        state = train.fit(single, state, tr, va, train.Schedule(n, n, n, seed=c.seed),
                          workdir=None, progress=False)  # fmt: skip
        fit_s += time.perf_counter() - t0
    print(f"  train.fit: compile {compile_s:.1f} s, {K} fits {fit_s:.1f} s")
    rows.append(("sequential train.fit", compile_s + fit_s, fit_s))

    base_wall, base_loop = rows[0][1], rows[0][2]
    print("\n| method | wall incl. compile (s) | ratio | update loop excl. compile (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, loop in rows:
        print(f"| {name} | {wall:.1f} | {wall / base_wall:.2f} | {loop:.1f} | "
              f"{loop / base_loop:.2f} |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"members": K, "steps": n, "devices": jax.local_device_count(),
                       "rows": rows}, f, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
