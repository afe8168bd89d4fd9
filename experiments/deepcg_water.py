"""Paper 002 (DeePCG): a DeepPot-SE CG water model, its model deviation and size transfer.

1-site SPC/E water (the shipped ``spce_512`` data: 512 COM beads, 300 K, 200 ps)
is force-matched with DeepPot-SE (``se_e2_a``, R_c = 6 Å as in the paper,
Adam with batch 4 and a decaying learning rate). Four models that differ
only by the seed of their initialisation are trained together in one
vmapped computation; their model deviation Σ_i (paper 002 eq. 15) over the
validation frames is reported (the paper: 99.3 % of Σ_i below 50 meV/Å with
15 ns of data). Member 0 is then simulated (Langevin, τ = 0.1 ps as in the
paper, 2 fs) at the training size and at 8× the size (2×2×2 copies, 4096
beads; the paper went from 64 to 512 molecules), and the RDF, the O-O-O ADF
and the q̄4/q̄6 distributions (paper 002 App. A) are compared with AA.

Frames: training from the first 160 ps, validation from the last 30 ps (a
10 ps gap between them).

    python -m cgjax.run experiments/deepcg_water.py \
        --config=configs/deepcg_water.py:quick --workdir=runs/deepcg

Outputs: ``results.json``, ``plots/structure.png`` (AA, CG at 512, CG at
4096), ``plots/model_deviation.png``, ``plots/training.png``, ``log.txt``,
``train/`` (ensemble checkpoints, ``metrics.jsonl``).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cgjax import allocate_neighbor_list, datasets, potentials, simulate, train, units, workflow

#: 50 meV/Å, the paper's model-deviation threshold, in kJ/mol/nm.
PAPER_THRESHOLD = 0.050 * units.eV / units.angstrom


def _frames_in(frames, span, stride):
    t = frames.time
    idx = np.flatnonzero((t >= span[0]) & (t < span[1] + 1e-9))[::stride]
    if idx.size == 0:
        raise ValueError(f"no frames of {frames.n_frames} in the time span {span} ps")
    return frames.select(idx)


def _member_forces(model, stacked, positions):
    """``[T, K, N, 3]`` forces of every member on every frame (kJ/mol/nm)."""
    nb = allocate_neighbor_list(model, positions)

    @jax.jit
    def per_frame(R):
        nbr = nb.update(R)
        F = jax.vmap(lambda p: model.force_fn(p)(R, neighbor=nbr))(stacked)
        return F, nbr.did_buffer_overflow

    F, overflow = jax.lax.map(per_frame, jnp.asarray(positions))
    if bool(jnp.any(overflow)):  # allocate_neighbor_list covered every frame
        raise RuntimeError("neighbor list overflowed on frames it was allocated for")
    return np.asarray(F)


def _tile(R, box, n):
    L = np.diag(np.asarray(box))
    shifts = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return (np.asarray(R)[None] + (shifts * L)[:, None]).reshape(-1, 3), np.asarray(box) * n


def _simulate(model_pot, params, frames, R0, box, reference, md, n_steps, config, wd, label):
    n = R0.shape[0]
    species = np.zeros(n, np.int32)
    masses = np.full(n, float(frames.masses[0]))
    system = simulate.System.create(box=box, species=species, masses=masses)
    model = potentials.energy_model(model_pot, system=system)
    protocol = simulate.Protocol(
        temperature=float(md.temperature), dt=float(md.dt), thermostat="langevin",
        friction=float(md.friction), equilibration_steps=int(n_steps["equilibration_steps"]),
        production_steps=int(n_steps["production_steps"]),
        record_every=int(n_steps["record_every"]), skin=float(md.skin), seed=int(config.seed),
    )  # fmt: skip
    wd.log(f"{label} sampling: {protocol}")
    report = simulate.validate_by_simulation(
        model, params, reference, R0, protocol,
        nve_steps=int(n_steps.get("nve_steps", 0)), progress=config.progress, log=wd.log,
    )  # fmt: skip
    steps = n_steps["equilibration_steps"] + n_steps["production_steps"]
    wall = report.wall_s.get("equilibration", 0.0) + report.wall_s.get("production", 0.0)
    out = {"n_beads": n, **report.summary()}
    out["steps_per_s"] = steps / wall if report.error is None and wall > 0 else None
    out["structure"] = None if report.structure is None else report.structure.to_dict()
    wd.log(
        f"{label}: {n} beads, RDF TAE {report.rdf_tae_A:.3f} Å, ADF TAE {report.adf_tae:.3f}, "
        f"q̄4 {report.q4_mean:.3f} (AA {reference.q4_mean:.3f}), q̄6 {report.q6_mean:.3f} "
        f"(AA {reference.q6_mean:.3f}), stable {report.stable}"
        + (f" ({report.error})" if report.error else "")
    )
    return out


def _plots(results, reference, wd):
    curves = {"AA (mapped SPC/E, 512)": reference}
    for key, label in (("md_small", "DeePCG, 512 beads"), ("md_large", "DeePCG, 8x (4096)")):
        if results[key].get("structure"):
            curves[label] = simulate.Structure.from_dict(results[key]["structure"])
    simulate.plot_structures(
        curves, wd.plot_path("structure.png"), title="paper 002: DeePCG water vs AA, 300 K"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev = results["model_deviation"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    edges = np.asarray(dev["hist_edges_meV_per_A"])
    ax.stairs(dev["hist_density"], edges)
    ax.axvline(50.0, color="k", ls="--", lw=1, label="50 meV/Å (paper threshold)")
    ax.set(xlabel="Σ_i (meV/Å)", ylabel="density",
           title=f"model deviation, K = {dev['n_members']}")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(wd.plot_path("model_deviation.png"), dpi=110)
    plt.close(fig)
    path = os.path.join(wd.path, "train", "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        steps = [r["step"] for r in recs]
        val = np.asarray([r["val_force_rmse_kcal_per_mol_per_A"] for r in recs])
        for k in range(val.shape[1]):
            ax.plot(steps, val[:, k], label=f"member {k}")
        ax.set(xlabel="update", ylabel="val force RMSE (kcal/mol/Å)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(wd.plot_path("training.png"), dpi=110)
        plt.close(fig)


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the study; returns (and writes) ``results.json``'s content."""
    wd = workflow.Workdir(workdir)
    frames = datasets.load(config.dataset, wrapped=True)
    train_frames = _frames_in(frames, config.train_span_ps, int(config.train_stride))
    val_frames = _frames_in(frames, config.val_span_ps, int(config.val_stride))
    wd.log(
        f"{config.dataset}: {train_frames.n_frames} training frames, {val_frames.n_frames} "
        f"validation frames, {frames.n_particles} beads, K = {config.n_members} members"
    )
    s = config.structure
    reference = simulate.Structure.from_dict(
        wd.stage(
            "reference_structure",
            lambda: simulate.structure(
                frames.positions, frames.box, max_frames=int(config.reference_frames),
                **s.to_dict(),
            ).to_dict(),
        )
    )  # fmt: skip
    pot = potentials.build("deeppot", config.model, cutoff=config.cutoff)
    model = potentials.energy_model(pot, species=frames.species, box=frames.box)
    K = int(config.n_members)
    stacked, _, metrics = train.fit_force_matching(
        model, train_frames, val_frames,
        train.FMSettings.from_config(config.train, seed=config.seed),
        workdir=os.path.join(wd.path, "train"), n_members=K, progress=config.progress,
        log=wd.log,
    )  # fmt: skip

    def deviation():
        F = _member_forces(model, stacked, val_frames.positions)  # [T, K, N, 3]
        sigma = np.asarray(jax.vmap(train.model_deviation)(jnp.asarray(F))).ravel()
        meV_per_A = units.eV / 1000 / units.angstrom
        s_meV = sigma / meV_per_A
        edges = np.linspace(0.0, max(100.0, float(np.percentile(s_meV, 99.5))), 61)
        mean_F = F.mean(1)
        err = mean_F - val_frames.forces
        ens_rmse = float(np.sqrt(np.mean(err**2)))
        return {
            "n_members": K,
            "n_instances": int(sigma.size),
            "mean_kJ_per_mol_per_nm": float(sigma.mean()),
            "mean_meV_per_A": float(s_meV.mean()),
            "p99_meV_per_A": float(np.percentile(s_meV, 99)),
            "fraction_below_50_meV_per_A": float(np.mean(sigma < PAPER_THRESHOLD)),
            "paper_fraction_below_50_meV_per_A": 0.993,
            "hist_edges_meV_per_A": edges,
            "hist_density": np.histogram(s_meV, bins=edges, density=True)[0],
            "ensemble_mean_force_rmse_kcal_per_mol_per_A": ens_rmse
            / units.kcal_per_mol_per_angstrom,
        }

    dev = wd.stage("model_deviation", deviation)
    wd.log(
        f"model deviation: mean {dev['mean_meV_per_A']:.1f} meV/Å, "
        f"{100 * dev['fraction_below_50_meV_per_A']:.1f} % below 50 meV/Å (paper: 99.3 %)"
    )
    member0 = jax.tree.map(lambda x: x[0], stacked)
    md = config.md
    R0 = val_frames.positions[0]
    small = wd.stage(
        "md_small",
        lambda: _simulate(pot, member0, frames, R0, frames.box, reference, md, md.to_dict(),
                          config, wd, "512 beads"),
    )  # fmt: skip
    n_rep = int(config.large.replicas)
    R_big, box_big = _tile(R0, frames.box, n_rep)
    large = wd.stage(
        "md_large",
        lambda: _simulate(pot, member0, frames, R_big, box_big, reference, md,
                          config.large.to_dict(), config, wd, f"{n_rep}^3 x 512 beads"),
    )  # fmt: skip
    results = {
        "experiment": "deepcg_water (paper 002)",
        "training": metrics,
        "model_deviation": dev,
        "md_small": small,
        "md_large": large,
        "reference": {"q4_mean": reference.q4_mean, "q6_mean": reference.q6_mean},
        "config": config.to_dict(),
    }
    _plots(results, reference, wd)
    for key in ("md_small", "md_large"):
        results[key] = {k: v for k, v in results[key].items() if k != "structure"}
    wd.write_results(results)
    rows = [
        {
            "run": key,
            **{
                k: results[key].get(k)
                for k in (
                    "n_beads",
                    "rdf_tae_A",
                    "adf_tae",
                    "q4_mean_cg",
                    "q4_mean_ref",
                    "q6_mean_cg",
                    "q6_mean_ref",
                    "temperature_mean_K",
                    "min_pair_distance_nm",
                    "steps_per_s",
                    "stable",
                )
            },
        }  # fmt: skip
        for key in ("md_small", "md_large")
    ]
    rmse = np.round(metrics["val_force_rmse_kcal_per_mol_per_A"], 3).tolist()
    wd.log(f"validation force RMSE per member {rmse} kcal/mol/Å\n"
           + workflow.format_table(rows, list(rows[0])))  # fmt: skip
    return results
