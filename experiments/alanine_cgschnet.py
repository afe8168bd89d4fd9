"""Paper 001: CGSchNet and CGnet on capped alanine, with priors, 5-fold ensembles and FES.

The shipped ``alanine_dipeptide`` data (ACE-ALA-NME, amber14 + OBC2, 300 K,
paper 001's six beads C(ACE), N, CA, C, N(NME), CB with constraint-aware
mapped forces) give the priors (harmonic bonds and angles, repulsion on
non-bonded pairs, a Fourier chirality improper; Fourier priors on phi and psi
with the ``quick_phi_psi_prior`` preset); CGSchNet (SchNet on atomic-number bead types)
and CGnet (an MLP on distances, angles and torsion sines/cosines) learn a
correction on top of the frozen priors, each as a 5-fold cross-validated
ensemble trained in one vmapped computation. The ensemble-mean force drives
many BAOAB Langevin replicas vmapped in one compiled run, started from data
frames; so does the priors-only model. Their (phi, psi) free-energy surfaces
are compared with the AA one by KL divergence and bin free-energy MSE, and
placed on the noise baseline: AA frames with Gaussian noise sigma (Å) on every
coordinate, as many samples as the CG set (paper 001 Fig. 5).

Data sampled under a bias on phi (``python -m cgjax.reference alanine --metad``,
the shipped set) are reweighted by ``exp(V(phi) / kT)`` wherever a distribution
is taken: the AA free-energy surfaces and basins, the noise baseline, the
histograms the priors are fitted to, and the frames the CG replicas start from.
Force matching takes the frames unweighted: phi is a function of the beads, so
the bias leaves the mapped forces' conditional mean, the target, unchanged.

    python -m cgjax.run experiments/alanine_cgschnet.py \\
        --config=configs/alanine_cgschnet.py:quick --workdir=runs/alanine

Outputs: ``results.json``, ``plots/fes_2d.png`` (AA / CGSchNet / CGnet / sigma =
0.1 Å), ``plots/fes_1d.png``, ``plots/noise_baseline.png``,
``plots/training.png``, ``log.txt``, ``train_*/`` (checkpoints, metrics),
``phi_psi_*.npz`` (the CG runs' angles).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cgjax import data, datasets, observables, potentials, simulate, train, units, workflow

MODELS = ("priors", "cgnet", "cgschnet")
LABELS = {"priors": "priors only", "cgnet": "CGnet", "cgschnet": "CGSchNet"}


def _topology(config) -> train.MoleculeTopology:
    t = config.topology
    return train.MoleculeTopology(6, tuple(t.bonds), tuple(t.angles), tuple(t.torsions))


def _networks(config, topology, frames):
    # bonded distances are the priors' (a network on them, standardised by their
    # ~0.003 nm spread, learned stiff noise and blew up a 2 fs run); all other pairs
    bonded = {tuple(sorted(b)) for b in topology.bonds}
    pairs = tuple((i, j) for i in range(6) for j in range(i + 1, 6) if (i, j) not in bonded)
    norm = potentials.cgnet_normalization(frames.positions, pairs, topology.angles,
                                          topology.torsions)  # fmt: skip
    cgnet = potentials.CGnet(
        pairs=pairs, angles=topology.angles, torsions=topology.torsions,
        feature_mean=tuple(norm["feature_mean"]), feature_std=tuple(norm["feature_std"]),
        hidden=tuple(config.cgnet.hidden),
    )  # fmt: skip
    s = config.schnet.to_dict()
    # bonded pairs out of SchNet's graph: their ~0.003-nm stiff distances belong to the priors
    exclude = set(bonded) if s.pop("exclude_bonded", False) else set()
    if s.pop("exclude_angle_ends", False):  # and the 1-3 pairs (angles' ends)
        exclude |= {tuple(sorted((a[0], a[2]))) for a in topology.angles}
    n_species = 6 if s.pop("bead_types", "element") == "bead" else 2
    schnet = potentials.SchNet(n_species=n_species, exclude=tuple(sorted(exclude)),
                               **{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in s.items()})  # fmt: skip
    return {"cgnet": cgnet, "cgschnet": schnet}


def _species(config, name, frames):
    """Bead types: atomic numbers (C = 0, N = 1; paper 001) or, for SchNet with
    ``schnet.bead_types == "bead"``, one type per bead (0..5)."""
    if name == "cgschnet" and config.schnet.get("bead_types", "element") == "bead":
        return np.arange(frames.n_particles, dtype=np.int32)
    return frames.species


def _model(potential, frames, species=None):
    species = frames.species if species is None else species
    system = simulate.System.create(box=None, species=species, masses=frames.masses)
    return potentials.energy_model(potential, system=system)


def _priors(frames, topology, config, wd, weights=None):
    """Bonds, angles, torsions and repulsion fitted to the (weighted) data; with
    ``priors.harmonic_fit == "forces"`` the bonds and angles are then refitted to the
    mapped forces (:func:`cgjax.train.force_matched_harmonics`)."""
    kw = config.priors.to_dict()
    how = kw.pop("harmonic_fit", "boltzmann")
    if how not in ("boltzmann", "forces"):
        raise ValueError(f"priors.harmonic_fit must be 'boltzmann' or 'forces', got {how!r}")
    prior, fitted = train.fit_molecule_priors(frames.positions, topology, config.temperature,
                                              weights=weights, **kw)  # fmt: skip
    if how == "forces":
        k_boltzmann = np.concatenate([fitted["bonds"]["k"], fitted["angles"]["k"]])
        prior, refit = train.force_matched_harmonics(prior, frames.positions, frames.forces)
        fitted = {**fitted, **refit}
        ratio = np.concatenate([refit["bonds"]["k"], refit["angles"]["k"]]) / k_boltzmann
        wd.log(f"bond and angle k fitted to forces / Boltzmann-inverted: {np.round(ratio, 3)}")
    return prior, fitted


def _member_activity(name, model, stacked, prior_model, frames, wd, n_frames=64):
    """Each ensemble member's network force: RMS over ``n_frames`` training frames of the
    member's force minus the priors' (kJ/mol/nm). A member whose network no longer depends
    on positions (every unit of a tanh layer saturated, seen in CGSchNet members with long
    training: pre-activations of several hundred) gives 0 and only dilutes the
    ensemble-mean correction; such members are logged and listed."""
    R = jnp.asarray(frames.positions[np.linspace(0, frames.n_frames - 1, n_frames).astype(int)])
    first = jax.tree.map(lambda x: x[0], stacked)
    prior_energy = prior_model.energy_fn({k: v for k, v in first.items() if k != name})
    f_prior = jax.vmap(jax.grad(lambda r: -prior_energy(r)))(R)

    @jax.jit
    def net_force_rms(p):
        f = jax.vmap(jax.grad(lambda r: -model.energy_fn(p)(r)))(R)
        return jnp.sqrt(jnp.mean((f - f_prior) ** 2))

    rms = [float(net_force_rms(jax.tree.map(lambda x, k=k: x[k], stacked)))
           for k in range(jax.tree.leaves(stacked)[0].shape[0])]  # fmt: skip
    inactive = [k for k, r in enumerate(rms) if r < 1e-3 * max(max(rms), 1e-30)]
    wd.log(f"{LABELS[name]} members' network force RMS over {n_frames} frames "
           f"{np.round(rms, 3).tolist()} kJ/mol/nm")  # fmt: skip
    if inactive:
        wd.log(f"WARNING: {LABELS[name]} member(s) {inactive} inactive (network force ~0: "
               f"saturated units); the ensemble mean carries {len(rms) - len(inactive)}/"
               f"{len(rms)} of the correction")  # fmt: skip
    return {"member_net_force_rms_kJ_per_mol_nm": rms, "inactive_members": inactive}


def _min_pair_distance(traj: np.ndarray) -> float:
    R = traj.reshape(-1, traj.shape[-2], 3)
    i, j = np.triu_indices(R.shape[1], 1)
    return float(np.linalg.norm(R[:, i] - R[:, j], axis=-1).min())


def _starts(frames, n, seed, weights=None):
    """``n`` start frames: evenly spaced, or (biased data) drawn with probability ~ weights."""
    if weights is None:
        return frames.positions[np.linspace(0, frames.n_frames - 1, n).astype(int)]
    rng = np.random.default_rng(seed)
    return frames.positions[np.sort(rng.choice(frames.n_frames, n, p=weights / weights.sum()))]


def _simulate(name, model, params, frames, config, wd, weights=None):
    md = config.md
    protocol = simulate.Protocol(
        temperature=float(config.temperature), dt=float(md.dt), thermostat="langevin",
        friction=float(md.friction), equilibration_steps=int(md.equilibration_steps),
        production_steps=int(md.production_steps), record_every=int(md.record_every),
        skin=None, seed=int(config.seed),
    )  # fmt: skip
    starts = _starts(frames, int(md.replicas), int(config.seed), weights)
    wd.log(f"{LABELS[name]} sampling, {len(starts)} replicas: {protocol}")
    try:
        out, wall = simulate.sample_replicas(model, params, starts, protocol,
                                             progress=config.progress, log=wd.log)  # fmt: skip
    except simulate.SimulationError as e:
        wd.log(f"{LABELS[name]}: simulation failed: {e}")
        return {"stable": False, "error": str(e)}
    traj = np.asarray(out.trajectory.positions)  # [B, F, 6, 3]
    phi_psi = observables.ramachandran(traj.reshape(-1, 6, 3))
    np.savez_compressed(os.path.join(wd.path, f"phi_psi_{name}.npz"), phi_psi=phi_psi)
    # the runner counts 3N - 3 degrees of freedom (momentum conserved); Langevin in free
    # space thermalises all 3N, so 2 KE / (3N kB) is the temperature to compare with the bath.
    # It reads a few K low at dt = 2 fs: BAOAB samples positions to high order but the
    # momenta at whole steps carry an O(dt^2) error with the stiff bead bonds. Measured
    # (scripts/alanine_force_checks.py temperature; priors of :quick_phi_psi_prior, 64
    # replicas x 30 ps): 293.0 / 296.1 / 301.4 K (+-2 K) at dt = 2 / 1 / 0.5 fs, bond
    # means and widths within 1e-4 nm of each other and of the AA's.
    n = traj.shape[-2]
    T = np.asarray(out.trajectory.temperature) * (3 * n - 3) / (3 * n)
    return {
        "stable": True,
        "n_samples": int(len(phi_psi)),
        "simulated_ns_total": float(traj.shape[0] * md.production_steps * md.dt / 1000),
        "min_pair_distance_nm": _min_pair_distance(traj),
        "temperature_mean_K": float(T.mean()),
        "steps_per_s": float(out.steps_per_second),
        "wall_s": wall,
    }


def _compare(name, sim, ref, baseline, config, wd):
    if not sim.get("stable"):
        return {}
    phi_psi = np.load(os.path.join(wd.path, f"phi_psi_{name}.npz"))["phi_psi"]
    fes = observables.free_energy_surface(
        phi_psi, config.temperature, n_bins=config.analysis.n_bins
    )
    m = observables.fes_metrics(ref.counts, fes.counts, ref.kT)
    sig = baseline.sigmas_A
    return {
        **m,
        "equivalent_sigma_kl_A": observables.equivalent_sigma(sig, baseline.kl.mean(0), m["kl"]),
        "equivalent_sigma_mse_A": observables.equivalent_sigma(
            sig, baseline.mse.mean(0), m["mse_kJ2_per_mol2"]
        ),  # fmt: skip
        "basins": observables.basin_populations(phi_psi),
    }


def _noise_baseline(frames, n_samples, config, weights=None):
    a = config.analysis
    sigmas = [round(0.01 * k, 2) for k in range(int(round(a.sigma_max_A / 0.01)) + 1)]
    nb = observables.noise_baseline(
        frames.positions, config.temperature, n_samples=min(n_samples, frames.n_frames),
        sigmas_A=sigmas, n_seeds=int(a.noise_seeds), n_bins=int(a.n_bins), seed=int(config.seed),
        weights=weights,
    )  # fmt: skip
    return {"sigmas_A": nb.sigmas_A, "kl": nb.kl, "mse": nb.mse, "n_samples": nb.n_samples}


def _plots(ref_pp, comparisons, baseline, frames, config, wd, weights=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T, nb = config.temperature, int(config.analysis.n_bins)
    rng = np.random.default_rng(config.seed)
    R = frames.positions
    if weights is not None:  # an unweighted set, as the noise baseline draws them
        R = R[rng.choice(len(R), len(R), p=weights / weights.sum())]
    noisy = R + rng.normal(size=R.shape) * 0.1 * units.angstrom
    sets = {"AA (amber14 + OBC2)": ref_pp}
    set_weights = {"AA (amber14 + OBC2)": weights}
    for name in ("cgschnet", "cgnet"):
        path = os.path.join(wd.path, f"phi_psi_{name}.npz")
        if os.path.exists(path):
            sets[LABELS[name]] = np.load(path)["phi_psi"]
    sets["AA + noise, σ = 0.1 Å"] = observables.ramachandran(noisy)
    fes = {k: observables.free_energy_surface(v, T, n_bins=nb, weights=set_weights.get(k))
           for k, v in sets.items()}  # fmt: skip
    vmax = 6.0  # kcal/mol, one colour scale for all panels
    fig, axes = plt.subplots(1, len(fes), figsize=(3.6 * len(fes), 3.4), squeeze=False)
    for ax, (label, f) in zip(axes[0], fes.items(), strict=True):
        deg = np.rad2deg(f.edges)
        im = ax.pcolormesh(deg, deg, f.free_energy_kcal.T, vmin=0, vmax=vmax, cmap="viridis")
        ax.set(title=label, xlabel="φ (deg)", ylabel="ψ (deg)", aspect="equal")
    fig.colorbar(im, ax=axes[0].tolist(), label="free energy (kcal/mol)")
    fig.savefig(wd.plot_path("fes_2d.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for j, angle in enumerate(("φ", "ψ")):
        ax = axes[j]
        for k, (label, pp) in enumerate(sets.items()):
            f = observables.free_energy_surface(pp[:, j], T, n_bins=nb,
                                                weights=set_weights.get(label))  # fmt: skip
            x = np.rad2deg(0.5 * (f.edges[1:] + f.edges[:-1]))
            if k == 0:
                ax.fill_between(x, f.free_energy_kcal, vmax, alpha=0.3, color="gray", label=label)
            else:
                ax.plot(x, f.free_energy_kcal, label=label)
        ax.set(xlabel=f"{angle} (deg)", ylabel="free energy (kcal/mol)", ylim=(0, vmax))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(wd.plot_path("fes_1d.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    sig = np.asarray(baseline["sigmas_A"])
    panels = ((axes[0], "kl", "kl", "KL divergence (nats)"),
              (axes[1], "mse", "mse_kJ2_per_mol2", "MSE ((kJ/mol)²)"))  # fmt: skip
    for ax, key, m_key, unit in panels:
        for row in np.asarray(baseline[key]):
            ax.plot(sig, row, color="gray", lw=0.7, alpha=0.6)
        for k, (name, comp) in enumerate(comparisons.items()):
            if comp:
                ax.axhline(comp[m_key], ls="--", lw=1.2, color=f"C{k}", label=LABELS[name])
        ax.set(xlabel="noise σ (Å) on AA bead coordinates", ylabel=unit, yscale="log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(wd.plot_path("noise_baseline.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name in ("cgnet", "cgschnet"):
        path = os.path.join(wd.path, f"train_{name}", "metrics.jsonl")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        steps = [r["step"] for r in recs]
        val = np.asarray([r["val_force_rmse_kcal_per_mol_per_A"] for r in recs])
        for k in range(val.shape[1]):
            ax.plot(steps, val[:, k], color="C0" if name == "cgschnet" else "C1", lw=1,
                    label=LABELS[name] if k == 0 else None)  # fmt: skip
    ax.set(xlabel="update", ylabel="validation force RMSE (kcal/mol/Å)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(wd.plot_path("training.png"), dpi=110)
    plt.close(fig)


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the study; returns (and writes) ``results.json``'s content."""
    wd = workflow.Workdir(workdir)
    wd.plan({"priors": 1, "md_priors": 20, "md_cgnet": 20, "md_cgschnet": 30,
             "noise_baseline": 5})  # fmt: skip
    all_frames = (
        datasets.load(config.dataset)
        if config.dataset in datasets.available()
        else data.Frames.load(config.dataset)  # a file made by python -m cgjax.reference alanine
    )
    frames = all_frames.select(slice(None, None, int(config.frame_stride)))
    topology = _topology(config)
    wd.log(f"{config.dataset}: {frames.n_frames} frames (stride {config.frame_stride}) of "
           f"6 beads, {config.temperature} K")  # fmt: skip
    w_all = observables.frame_weights(all_frames, temperature_K=config.temperature)
    w = observables.frame_weights(frames, temperature_K=config.temperature)
    reweighting = {"biased": w_all is not None}
    if w_all is not None:
        reweighting.update(
            bias=all_frames.metadata["bias"],
            effective_sample_size=observables.effective_sample_size(w_all),
            effective_sample_size_training=observables.effective_sample_size(w),
        )
        wd.log(f"frames sampled under a phi bias: reweighted by exp(V(phi)/kT); effective "
               f"sample size {reweighting['effective_sample_size']:.0f} of "
               f"{all_frames.n_frames} frames")  # fmt: skip
    prior, fitted = _priors(frames, topology, config, wd, w)
    wd.stage("priors", lambda: {"fitted": fitted, "nonbonded_pairs": topology.nonbonded})
    nets = _networks(config, topology, frames)
    settings = train.FMSettings.from_config(config.train, seed=config.seed,
                                            frozen=train.PRIOR_TERMS)  # fmt: skip
    models, params, training = {"priors": _model(prior, frames)}, {}, {}
    params["priors"] = models["priors"].init_fn(jax.random.key(0), jnp.asarray(frames.positions[0]))
    for name, net in nets.items():
        base = _model(potentials.Sum(terms=(*prior.terms, (name, net))), frames,
                      _species(config, name, frames))  # fmt: skip
        stacked, training[name] = train.fit_kfold_force_matching(
            base, frames, settings, n_folds=int(config.n_folds),
            workdir=os.path.join(wd.path, f"train_{name}"), progress=config.progress, log=wd.log,
        )  # fmt: skip
        training[name].update(_member_activity(name, base, stacked, models["priors"], frames, wd))
        models[name] = base._replace(energy_fn=lambda p, m=base: train.ensemble_energy_fn(m, p))
        params[name] = stacked
    sims = {n: wd.stage(f"md_{n}", lambda n=n: _simulate(n, models[n], params[n], frames, config,
                                                         wd, w)) for n in MODELS}  # fmt: skip
    n_cg = max([s.get("n_samples", 0) for s in sims.values()] + [1])
    baseline = wd.stage("noise_baseline", lambda: _noise_baseline(all_frames, n_cg, config, w_all))
    nb = observables.NoiseBaseline(*(np.asarray(baseline[k]) for k in ("sigmas_A", "kl", "mse")),
                                   int(baseline["n_samples"]))  # fmt: skip
    ref_pp = observables.ramachandran(all_frames.positions)
    ref = observables.free_energy_surface(ref_pp, config.temperature, weights=w_all,
                                          n_bins=int(config.analysis.n_bins))  # fmt: skip
    comparisons = {n: _compare(n, sims[n], ref, nb, config, wd) for n in MODELS}
    at = {s: {"kl": float(nb.kl.mean(0)[i]), "mse_kJ2_per_mol2": float(nb.mse.mean(0)[i])}
          for i, s in enumerate(nb.sigmas_A) if round(float(s), 2) in (0.1, 0.2, 0.3)}  # fmt: skip
    _plots(ref_pp, comparisons, baseline, all_frames, config, wd, w_all)
    results = {
        "experiment": "alanine_cgschnet (paper 001)",
        "n_frames_aa": all_frames.n_frames,
        "n_frames_training": frames.n_frames,
        "reference_basins": observables.basin_populations(ref_pp, w_all),
        "reference_reweighting": reweighting,
        "training": training,
        "simulation": sims,
        "fes": comparisons,
        "noise_baseline": {**baseline, "mean_at_sigma": {str(k): v for k, v in at.items()}},
        "config": config.to_dict(),
    }
    wd.write_results(results)
    rows = [{"model": LABELS[n], **{k: comparisons[n].get(k) for k in (
        "kl", "mse_kJ2_per_mol2", "equivalent_sigma_kl_A", "equivalent_sigma_mse_A")},
        "stable": sims[n].get("stable"), "min_pair_nm": sims[n].get("min_pair_distance_nm"),
        "T_K": sims[n].get("temperature_mean_K")} for n in MODELS]  # fmt: skip
    wd.log("FES vs AA\n" + workflow.format_table(rows, list(rows[0])))
    return results
