"""A tiny LJ force-matching sweep, run in a subprocess by the sweep tests.

``python tests/sweep/sweep_worker.py OUT.json [--pid=I --nproc=N --port=P]``:
XLA flags (virtual devices) must be set before JAX is imported, and
``jax.distributed`` is once per process, hence subprocesses. Writes the rows
(and, single-process, every member's flat final parameters) to ``OUT.json``.
"""

import json
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

N_FRAMES, L = 12, 1.1  # frames, fcc box (nm): 2x2x2 cells of 0.55 nm, 32 particles
SWEEPS = ["train.lr=[1e-2,3e-3]", "seed=range(3)"]  # 6 members: padded to 8 on 4 devices


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.train = ml_collections.ConfigDict(
        {"lr": 1e-2, "lr_final_fraction": 0.1, "n_steps": 20, "batch_size": 2, "eval_every": 10}
    )
    return c


def lj_problem():
    """(model, train, val): a tiny GNN fitted to LJ forces of 32 perturbed fcc particles."""
    from cgjax import potentials

    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cells = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lattice = ((cells[:, None] + basis[None]).reshape(-1, 3)) * (L / 2)
    n = lattice.shape[0]
    R = lattice[None] + np.random.default_rng(0).normal(0.0, 0.02, (N_FRAMES, n, 3))
    species = np.zeros(n, np.int32)
    lj = potentials.energy_model(
        potentials.LennardJones(sigma=0.34, epsilon=1.0, cutoff=0.5, param_dtype=jnp.float64),
        species=species,
        box=L,
    )
    F = np.asarray(jax.vmap(lj.force_fn(lj.init_fn(jax.random.key(0), R[0])))(R))
    gnn = potentials.GNN(
        n_species=1, embed_dim=4, message_dim=4, n_layers=1, n_rbf=4, cutoff=0.5,
        param_dtype=jnp.float64,
    )  # fmt: skip
    model = potentials.energy_model(gnn, species=species, box=L)
    return model, {"positions": R[:8], "forces": F[:8]}, {"positions": R[8:], "forces": F[8:]}


def flat_params(params) -> list[float]:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)]).tolist()


def main(argv: list[str]) -> None:
    out = argv[0]
    opts = dict(a[2:].split("=", 1) for a in argv[1:])
    from cgjax import sweep

    pid, nproc = 0, 1
    if "nproc" in opts:
        pid, nproc = sweep.init_distributed(
            f"127.0.0.1:{opts['port']}", int(opts["nproc"]), int(opts["pid"])
        )
    jax.config.update("jax_enable_x64", True)
    model, tr, va = lj_problem()
    info = {}

    def group_fn(configs):
        res = sweep.sweep_force_matching(model, tr, va, configs)
        info.update(n_devices=res.n_devices, sharding=res.member_sharding, n_padded=res.n_padded)
        for m in res.members:
            m["params_flat"] = flat_params(m.pop("params"))
        info.setdefault("members", []).extend(res.members)
        return res.members

    rows = sweep.run_sweep(group_fn, base_config(), SWEEPS, opts.get("workdir"))
    result = {
        "rows": rows,
        "pid": pid,
        "nproc": nproc,
        "n_local_devices": jax.local_device_count(),
        "n_global_devices": jax.device_count(),
        **info,
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
