"""The chemtrain side of ``benchmarks/vs_chemtrain.py``; runs in chemtrain's own environment.

This file imports only numpy, jax, jax-md, haiku, optax and chemtrain 0.2.0
(with its ``jax_md_mod``), never cgjax: ``vs_chemtrain.py`` starts it with the
Python of a separate virtual environment (``--chemtrain-python``), one task per
process, so each process's peak RSS is that task's alone::

    PYTHON _chemtrain_worker.py TASK WORKDIR

``TASK`` is ``fm`` (force matching of DimeNet++), ``difftre`` (DiffTRe of an LJ
pair on the AA RDF) or ``md`` (Nose-Hoover MD with the force-matched DimeNet++).
``WORKDIR`` holds ``data.npz`` and ``settings.json`` written by ``vs_chemtrain.py``
(positions nm, forces kJ/mol/nm, box nm, masses amu, temperature K, dt ps); the
result is written to ``WORKDIR/chemtrain_TASK.json``, and ``fm`` also saves the
trained parameters (``chemtrain_fm_params.pkl``) for ``md``.

The calls follow chemtrain's own examples (``examples/CG_water_difftre.md``,
``examples/water/CG_water_force_matching.py``): fractional coordinates with
``jax_md.space.periodic_general``, ``jax_md_mod.model.neural_networks.dimenetpp_neighborlist``,
``chemtrain.trainers.ForceMatching`` and ``chemtrain.trainers.Difftre`` with
``quantity.targets.init_radial_distribution_target``.
"""

import json
import os
import pickle
import platform
import resource
import sys
import time

import numpy as onp


def peak_rss_gb() -> float:
    """Peak resident set size of this process (GB; Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def versions() -> dict:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("chemtrain", "jax", "jaxlib", "jax-md", "dm-haiku", "optax", "numpy"):
        try:
            out[name] = version(name)
        except Exception as err:  # noqa: BLE001 - report, do not fail
            out[name] = f"unknown ({err})"
    return out


def space_of(box_lengths):
    """Fractional coordinates on a cubic box, as chemtrain's water examples set them up."""
    from jax import numpy as jnp
    from jax_md import space
    from jax_md_mod import custom_space  # before jax_md: chemtrain's patch (its README)

    box_tensor, scale_fn = custom_space.init_fractional_coordinates(jnp.asarray(box_lengths))
    displacement, shift = space.periodic_general(box_tensor, fractional_coordinates=True,
                                                 wrapped=True)  # fmt: skip
    return box_tensor, scale_fn, displacement, shift


def frac(positions, box_lengths):
    """Real positions (nm) -> fractional coordinates in [0, 1)."""
    return onp.mod(onp.asarray(positions, onp.float32) / onp.asarray(box_lengths, onp.float32), 1.0)


def dimenet(displacement, box_tensor, R0, s):
    """DimeNet++ energy template, neighbor function and initial list (chemtrain's CG water)."""
    import haiku as hk
    from jax import numpy as jnp
    from jax import random
    from jax_md import partition
    from jax_md_mod.model import layers, neural_networks

    R0 = jnp.asarray(R0)  # jax-md's padding index N needs jax's out-of-bounds gather
    cut = float(s["cutoff"])
    neighbor_fn = partition.neighbor_list(displacement, box_tensor, r_cutoff=cut,
                                          dr_threshold=float(s["skin"]), disable_cell_list=True,
                                          fractional_coordinates=True,
                                          capacity_multiplier=1.5)  # fmt: skip
    nbrs_init = neighbor_fn.allocate(R0, extra_capacity=0)
    mlp_init = {"b_init": hk.initializers.Constant(0.0),
                "w_init": layers.OrthogonalVarianceScalingInit(scale=1.0)}  # fmt: skip
    init_fn, apply_fn = neural_networks.dimenetpp_neighborlist(
        displacement, cut, 1, R0, nbrs_init, embed_size=int(s["embed_size"]),
        n_interaction_blocks=int(s["n_interaction_blocks"]), init_kwargs=mlp_init,
    )  # fmt: skip

    def energy_fn_template(params):
        def energy_fn(pos, neighbor, **kwargs):
            # DimeNet++ returns its n_global = 1 outputs, shape (1,); energy is their sum
            return jnp.sum(apply_fn(params, pos, neighbor, **kwargs))

        return energy_fn

    params = init_fn(random.PRNGKey(int(s["seed"])), R0, nbrs_init)
    return energy_fn_template, neighbor_fn, nbrs_init, params


def task_fm(data, s, wd):
    """Force matching: ``ForceMatching`` trainer, ``s["n_updates"]`` Adam updates of batch B."""
    import jax
    import optax
    from chemtrain import trainers

    box = data["box_lengths"]
    box_tensor, _, displacement, _ = space_of(box)
    Rtr, Rva = frac(data["train_positions"], box), frac(data["val_positions"], box)
    Ftr, Fva = data["train_forces"].astype(onp.float32), data["val_forces"].astype(onp.float32)
    energy_fn_template, _, nbrs_init, params = dimenet(displacement, box_tensor, Rtr[0], s)
    n_params = sum(int(onp.size(x)) for x in jax.tree_util.tree_leaves(params))
    B = int(s["batch_size"])
    trainer = trainers.ForceMatching(
        params, optax.adam(float(s["lr"])), energy_fn_template, nbrs_init,
        batch_per_device=B, batch_cache=10, log_file=os.path.join(wd, "chemtrain_fm.log"),
        checkpoint_path=os.path.join(wd, "ct_checkpoints"),
    )  # fmt: skip
    trainer.set_dataset({"R": Rtr, "F": Ftr}, stage="training", shuffle=True)
    trainer.set_dataset({"R": Rva, "F": Fva}, stage="validation")
    stamps = []
    trainer.add_task("post_batch", lambda *a, **k: stamps.append(time.perf_counter()))
    per_epoch = len(Rtr) // B
    n_updates = int(s["n_updates"])
    t0 = time.perf_counter()
    while len(stamps) < n_updates:
        trainer.set_batches_per_epoch("training", min(per_epoch, n_updates - len(stamps)))
        trainer.train(1)
    wall = time.perf_counter() - t0
    pred = trainer.predict({"R": Rva, "F": Fva}, params=trainer.params, batch_size=B)
    diff = onp.asarray(pred["F"]) - Fva
    steps = onp.diff(onp.asarray([t0, *stamps]))  # steps[0]: the first (compiling) update
    with open(os.path.join(wd, "chemtrain_fm_params.pkl"), "wb") as f:
        pickle.dump(jax.device_get(trainer.params), f)
    return {
        "model": f"DimeNet++ (embed {s['embed_size']}, {s['n_interaction_blocks']} blocks)",
        "n_params": n_params,
        "neighbor_capacity": int(nbrs_init.idx.shape[-1]),
        "updates": len(stamps),
        "first_update_s": stamps[0] - t0,
        "s_per_update": float(onp.median(steps[1:] if len(steps) > 1 else steps)),
        "frames_per_s": B / float(onp.median(steps[1:] if len(steps) > 1 else steps)),
        "train_wall_s": wall,
        "val_force_rmse": float(onp.sqrt(onp.mean(diff**2))),
        "val_frames": int(len(Rva)),
        "finite": bool(onp.all(onp.isfinite(diff))),
    }


def lj_template(displacement, s):
    """A switched LJ pair (sigma, epsilon trainable) through jax-md's neighbor-list pair map."""
    from jax import numpy as jnp
    from jax_md import energy, smap, space

    def safe_lj(dr, sigma, epsilon, **unused):
        # The padding of a Dense list puts pairs at dr = 0; jax-md masks their energy but
        # d/dsigma of (sigma/0)^12 is inf and the masked gradient NaN. chemtrain's own
        # custom_energy.customn_lennard_jones_neighbor_list has the same NaN; its
        # truncated_lennard_jones guards dr like this.
        return energy.lennard_jones(jnp.where(dr > 1e-7, dr, 1e7), sigma, epsilon)

    cut = float(s["lj_cutoff"])
    pair = energy.multiplicative_isotropic_cutoff(safe_lj, cut - 0.05, cut)
    metric = space.canonicalize_displacement_or_metric(displacement)  # distances, not vectors

    def energy_fn_template(params):
        return smap.pair_neighbor_list(pair, metric, sigma=params["sigma"],
                                       epsilon=params["epsilon"])  # fmt: skip

    return energy_fn_template


def timings_of(s):
    """chemtrain's ``TimingClass`` from step counts (half a printout added against rounding)."""
    from chemtrain.ensemble import sampling

    dt, every = float(s["dt"]), int(s["record_every"])
    t_eq = int(s["equilibration_steps"]) * dt
    n_prod = int(s["production_steps"]) // every
    total = t_eq + (n_prod + 0.5) * every * dt
    return sampling.process_printouts(dt, total, t_eq, every * dt)


def nose_hoover_template(shift, s, kT):
    from functools import partial

    from jax_md import simulate

    return partial(simulate.nvt_nose_hoover, shift_fn=shift, dt=float(s["dt"]), kT=kT,
                   tau=float(s["tau"]))  # fmt: skip


def relative_adam(lr):
    """The same optimiser as cgjax's side (experiments/structure_methods.py ``_relative_adam``)."""
    import optax

    return optax.chain(optax.scale_by_adam(b1=0.5), optax.scale_by_param_block_rms(),
                       optax.scale_by_learning_rate(lr))  # fmt: skip


def task_difftre(data, s, wd):
    """DiffTRe on the AA RDF: ``trainers.Difftre`` updates until the wall budget is spent."""
    import jax
    from chemtrain import trainers
    from chemtrain.ensemble import sampling
    from chemtrain.quantity import targets as qtargets
    from jax import numpy as jnp
    from jax import random
    from jax_md import partition

    box = data["box_lengths"]
    box_tensor, _, displacement, shift = space_of(box)
    R0 = jnp.asarray(frac(data["R0"], box))
    kT = float(s["kT"])
    template = lj_template(displacement, s)
    params = {"sigma": jnp.float32(s["lj_start"][0]), "epsilon": jnp.float32(s["lj_start"][1])}
    neighbor_fn = partition.neighbor_list(
        displacement, box_tensor, float(s["lj_cutoff"]), dr_threshold=float(s["sampling_skin"]),
        disable_cell_list=True, fractional_coordinates=True, format=partition.Dense,
    )  # fmt: skip
    nbrs = neighbor_fn.allocate(R0, capacity_multiplier=1.5)
    sim_template = nose_hoover_template(shift, s, kT)
    sim_init, _ = sim_template(template(params))
    state0 = sim_init(random.PRNGKey(int(s["seed"])), R0, neighbor=nbrs, mass=float(s["mass"]))
    reference = sampling.SimulatorState(sim_state=state0, nbrs=nbrs)
    system = {"displacement_fn": displacement, "reference_box": box_tensor, "nbrs_init": nbrs,
              "r_init": R0}  # fmt: skip
    builder = qtargets.TargetBuilder(system, strict=True)
    rdf_target = onp.stack([data["rdf_r_aa"], data["rdf_g_aa"]], axis=1)
    builder["rdf"] = qtargets.init_radial_distribution_target(
        rdf_target, rdf_start=0.0, rdf_cut=float(s["rdf_r_max"]), nbins=int(s["rdf_bins"]),
        gamma=1.0)  # fmt: skip
    targets, compute_fns = builder.build()
    t0 = time.perf_counter()
    trainer = trainers.Difftre(params, relative_adam(float(s["difftre_lr"])),
                               reweight_ratio=float(s["ess_threshold"]),
                               energy_fn_template=template,
                               checkpoint_path=os.path.join(wd, "ct_difftre"))  # fmt: skip
    trainer.add_statepoint(template, sim_template, neighbor_fn, timings_of(s), {"kT": kT},
                           compute_fns, reference, targets)  # fmt: skip
    setup_s = time.perf_counter() - t0  # compiles and runs the first trajectory
    n_samplings, stamps, history = 1, [], []
    last = onp.asarray(trainer.trajectory_states[0].trajectory.position[-1])
    budget = float(s["wall_budget_s"])
    # at least two updates, so a median without the first (compiling) one exists
    while (len(stamps) < 2 or time.perf_counter() - t0 < budget) and not trainer._diverged:
        t1 = time.perf_counter()
        trainer.train(1)
        stamps.append(time.perf_counter() - t1)
        now = onp.asarray(trainer.trajectory_states[0].trajectory.position[-1])
        n_samplings += int(not onp.array_equal(now, last))
        last = now
        p = jax.device_get(trainer.params)
        history.append({"sigma_nm": float(p["sigma"]), "epsilon_kJ_per_mol": float(p["epsilon"]),
                        "loss": float(trainer.batch_losses[-1])})  # fmt: skip
    p = jax.device_get(trainer.params)
    ps_per_sampling = (int(s["equilibration_steps"]) + int(s["production_steps"])) * float(s["dt"])
    n = max(len(stamps), 1)
    return {
        "method": "chemtrain DiffTRe",
        "updates": len(stamps),
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - t0,
        "s_per_update": float(onp.median(stamps[1:] or stamps)) if stamps else None,
        "samplings": n_samplings,
        "simulated_ps": n_samplings * ps_per_sampling,
        "ps_per_update": n_samplings * ps_per_sampling / n,
        "sigma_nm": float(p["sigma"]),
        "epsilon_kJ_per_mol": float(p["epsilon"]),
        "diverged": bool(trainer._diverged),
        "history": history,
    }


def task_md(data, s, wd):
    """Nose-Hoover MD with the force-matched DimeNet++ through chemtrain's trajectory generator."""
    from chemtrain.ensemble import sampling
    from jax import numpy as jnp
    from jax import random

    box = data["box_lengths"]
    box_tensor, _, displacement, shift = space_of(box)
    R0 = jnp.asarray(frac(data["R0"], box))
    energy_fn_template, neighbor_fn, nbrs, _ = dimenet(displacement, box_tensor, R0, s)
    import jax

    with open(os.path.join(wd, "chemtrain_fm_params.pkl"), "rb") as f:
        # as jax arrays: DimeNet++ indexes its species embedding with traced indices
        params = jax.tree_util.tree_map(jnp.asarray, pickle.load(f))
    kT = float(s["kT"])
    s_md = dict(s, dt=float(s["md_dt"]), equilibration_steps=int(s["record_every"]),
                production_steps=int(s["md_steps"]))  # fmt: skip
    sim_template = nose_hoover_template(shift, s_md, kT)
    sim_init, _ = sim_template(energy_fn_template(params))
    state0 = sim_init(random.PRNGKey(int(s["seed"])), R0, neighbor=nbrs, mass=float(s["mass"]))
    reference = sampling.SimulatorState(sim_state=state0, nbrs=nbrs)
    # vmap_batch 1: its auxiliary quantities (kT) are batched over frames, which must divide
    generate = sampling.trajectory_generator_init(sim_template, energy_fn_template,
                                                  timings_of(s_md), vmap_batch=1)  # fmt: skip
    t0 = time.perf_counter()
    traj = generate(params, reference, kT=kT)
    traj.trajectory.position.block_until_ready()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = generate(params, traj.sim_state, kT=kT)
    traj.trajectory.position.block_until_ready()
    wall = time.perf_counter() - t0
    steps = int(s_md["equilibration_steps"]) + int(s_md["production_steps"])
    kT_mean = float(onp.mean(onp.asarray(traj.aux["kT"])))
    return {
        "model": "DimeNet++ (force-matched)",
        "steps": steps,
        "first_call_s": first,
        "steps_per_s": steps / wall,
        "overflow": bool(traj.overflow),
        "finite": bool(onp.all(onp.isfinite(onp.asarray(traj.trajectory.position)))),
        "temperature_K": kT_mean / float(s["kB"]),
    }


TASKS = {"fm": task_fm, "difftre": task_difftre, "md": task_md}


def main(argv):
    if len(argv) != 3 or argv[1] not in TASKS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TASKS)}}} WORKDIR")
    task, wd = argv[1], argv[2]
    with open(os.path.join(wd, "settings.json")) as f:
        s = json.load(f)
    data = dict(onp.load(os.path.join(wd, "data.npz")))
    # chemtrain's README: import chemtrain (or jax_md_mod) before jax_md, whose 0.2.8
    # release uses jax.random.KeyArray (gone from jax 0.4.37) and is patched on import.
    import chemtrain  # noqa: F401
    import jax

    t0 = time.perf_counter()
    out = TASKS[task](data, s, wd)
    out.update(task=task, side="chemtrain", total_s=time.perf_counter() - t0,
               peak_rss_gb=peak_rss_gb(), versions=versions(),
               backend=jax.default_backend(), devices=[str(d) for d in jax.devices()])  # fmt: skip
    with open(os.path.join(wd, f"chemtrain_{task}.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
