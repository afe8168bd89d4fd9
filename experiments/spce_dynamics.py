"""Paper 004 end to end: CG water whose structure and dynamics both match SPC/E.

The CG potential is ``U = U_GNN(theta) + U_LJ(sigma, epsilon) + U_HF(A, omega)``
(paper 004 Fig. 1) on the shipped ``spce_512`` data (512 COM beads, 300 K).
Stages, each checkpointed in ``stages/`` so a rerun resumes at the first
unfinished one:

1. ``reference``: the AA RDF (0-10 Å), MSD and diffusion coefficient ``D_AA``
   (Einstein fit on the same window as the CG runs).
2. ``rem``: relative entropy minimisation of the LJ ``sigma`` and ``epsilon``
   alone against the AA frames (paper 004 §2.2), Newton-Raphson with
   reweighting (``train.relative_entropy``). Its samples come from the one
   CG sampling protocol (``config.dynamics``: Langevin equilibration, then
   Nose-Hoover) that stages 5-7 use as well.
3. ``force_matching``: the GNN initialised by force matching on top of the
   frozen REM LJ (the issue allows this; the paper trains the GNN on the RDF
   from scratch).
4. ``rdf_training``: Adam on the GNN parameters only, on the MSE between the
   Gaussian-smeared RDF of a differentiable Nose-Hoover trajectory and the AA
   RDF, gradients through diffrax's checkpointed adjoint (paper 004 §2.1).
5. ``bisection``: ``A`` in [0, 0.193] kJ/mol nm^2 (paper 004's 0.2 eV Å^2) at
   ``omega`` = 1000 1/nm (the paper's 100 1/Å) until
   ``D_CG = D_AA`` (``train.tune_high_frequency``, paper 004 §2.3, Fig. 4B):
   a bracketing search (``hf.method``: the paper's bisection, or the
   Illinois method on ``ln D``, the quick preset's, which needs fewer
   simulations), ``A`` estimated by a line fitted to ``ln D`` of the
   evaluations near the target, then a longer run at that ``A``; when its
   ``D`` misses ``D_AA`` by more than ``hf.refine_rtol`` the line is refitted
   with it and the run repeated (``hf.refine`` times at most). Each
   evaluation is saved as it finishes, so a killed search resumes.
6. ``omega_scan``: the RDF shift caused by ``U_HF`` at the top of the
   amplitude bracket against ``omega`` (paper 004 Fig. 4A); runs as long as
   the bisection's reuse its evaluations at ``A = 0`` and at the top.
7. ``validation``: a longer Nose-Hoover run of the final model (the
   search's last final run at the tuned ``A``, ``validation.production_steps``
   long): RDF TAE over 0-10 Å, ``D_CG``, ``D_CG / D_AA``.

    python -m cgjax.run experiments/spce_dynamics.py            # quick preset
    python -m cgjax.run experiments/spce_dynamics.py --config=configs/spce_dynamics.py:full

Outputs: ``results.json``, ``plots/{rdf,msd,bisection,omega_scan,training}.png``,
``log.txt``, ``stages/``, ``params/*.msgpack`` (parameters after each stage).

Liquid argon and methane (paper 004 Fig. 5B, C) are configs of this experiment:
``--config=configs/argon_dynamics.py:quick``, ``--config=configs/methane_dynamics.py:quick``.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cgjax import datasets, losses, observables, potentials, simulate, train, units, workflow, wrap

#: Relative costs of the stages, for the console's estimate of the time left:
#: their wall times (s), the mean of the two quick runs in docs/results (2 CPU cores).
STAGE_WEIGHTS = {"reference": 2, "rem": 27, "force_matching": 13, "rdf_training": 220,
                 "bisection": 247, "omega_scan": 18, "validation": 1}  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def _reference_rdf(obs: dict, r_max: float):
    r = np.asarray(obs["rdf"]["r_nm"])
    g = np.asarray(obs["rdf"]["g"])
    keep = r < r_max - 1e-9
    return r[keep], g[keep]


# ----------------------------------------------------------------------------- stages


def _stage_reference(frames, obs, config):
    d = config.dynamics
    r, g = _reference_rdf(obs, float(config.rdf_r_max))
    dt_frame = float(frames.dt)
    unwrapped = np.asarray(frames.positions)
    window = tuple(d.fit_window if d.aa_fit_window is None else d.aa_fit_window)
    diff = observables.diffusion_from_trajectory(
        unwrapped, dt_frame, fit_window=window, n_blocks=5, masses=frames.masses
    )
    max_lag = int(round(max(10.0, float(window[1])) / dt_frame))
    curve = observables.msd(unwrapped, max_lag=max_lag, masses=frames.masses)
    return {
        "rdf_r": r, "rdf_g": g,
        "msd_t": np.arange(max_lag + 1) * dt_frame, "msd": np.asarray(curve.msd),
        "D_AA": float(diff.D), "D_AA_err": float(diff.D_err),
        "D_AA_cm2_per_s": float(diff.D) / units.cm2_per_s,
        "D_AA_err_cm2_per_s": float(diff.D_err) / units.cm2_per_s,
        "fit_window_ps": window,
        "shipped_D_AA_cm2_per_s": obs["diffusion"]["D_cm2_per_s"],
        "shipped_fit_window_ps": obs["diffusion"]["fit_window_ps"],
    }  # fmt: skip


def _build(system, config, amplitude=0.0):
    cut = float(config.cutoff)
    gnn = potentials.build("gnn", config.model, cutoff=cut, n_species=1)
    lj = potentials.LennardJones(n_species=1, sigma=float(config.lj.sigma),
                                 epsilon=float(config.lj.epsilon), cutoff=cut,
                                 r_onset=float(config.lj.r_onset))  # fmt: skip
    hf = potentials.HighFrequency(n_species=1, amplitude=amplitude,
                                  omega=float(config.hf.omega), cutoff=cut)  # fmt: skip
    full = potentials.sum_of(gnn=gnn, lj=lj, hf=hf)
    model = potentials.energy_model(full, system=system)  # box, species, masses: one object
    lj_model = potentials.energy_model(lj, system=system)
    return model, lj_model


def _stage_rem(frames, lj_model, protocol, config, wd):
    c = config.rem
    stride = max(1, frames.n_frames // int(c.reference_frames))
    X = np.asarray(frames.positions[::stride])
    p0 = lj_model.init_fn(jax.random.key(config.seed), jnp.asarray(X[0]))
    res = train.relative_entropy(
        lj_model, p0, X, protocol, settings=train.REMSettings.from_config(c),
        progress=config.progress, log=wd.log,
    )  # fmt: skip
    sigma = float(np.asarray(res.params["sigma"]).ravel()[0])
    epsilon = float(np.asarray(res.params["epsilon"]).ravel()[0])
    wd.log(f"REM: sigma {sigma:.4f} nm, epsilon {epsilon:.4f} kJ/mol "
           f"({res.n_samplings} samplings, {len(res.history)} iterations)")  # fmt: skip
    return {
        "sigma_nm": sigma, "epsilon_kJ_per_mol": epsilon,
        "start": {"sigma_nm": float(config.lj.sigma),
                  "epsilon_kJ_per_mol": float(config.lj.epsilon)},
        "history": res.history, "n_samplings": res.n_samplings, "converged": res.converged,
        "n_reference_frames": int(len(X)),
    }  # fmt: skip


def _stage_fm(frames, model, rem, config, wd):
    c = config.fm
    t = frames.time
    train_idx = np.flatnonzero(t < float(c.val_span_ps[0]))[:: int(c.train_stride)]
    val_idx = np.flatnonzero(t >= float(c.val_span_ps[0]))[:: int(c.val_stride)]
    tr, va = frames.select(train_idx), frames.select(val_idx)
    p0 = model.init_fn(jax.random.key(config.seed), jnp.asarray(frames.positions[0]))
    lj = p0["lj"]
    lj = {"sigma": jnp.full_like(lj["sigma"], rem["sigma_nm"]),
          "epsilon": jnp.full_like(lj["epsilon"], rem["epsilon_kJ_per_mol"])}  # fmt: skip
    p0 = {**p0, "lj": lj}
    params, _, metrics = train.fit_force_matching(
        model, tr, va, train.FMSettings.from_config(c, seed=config.seed, frozen=("lj", "hf")),
        workdir=os.path.join(wd.path, "train_fm"), params0=p0, progress=config.progress,
        log=wd.log,
    )  # fmt: skip
    metrics["n_train_frames"], metrics["n_val_frames"] = tr.n_frames, va.n_frames
    metrics["params"] = wd.save_params("force_matching", params)
    return metrics


def _protocol(config) -> simulate.Protocol:
    """The one :class:`~cgjax.simulate.Protocol` of REM, the amplitude search, the omega
    scan and the validation: ``config.dynamics``, the run's temperature and seed."""
    return simulate.Protocol.from_config(config.dynamics, temperature=float(config.temperature),
                                         seed=int(config.seed))  # fmt: skip


def _equilibrate(model, params, R0, config, n_steps, dt, tau):
    """A short Nose-Hoover run (A = 0): a CG start for the trajectory stages."""
    protocol = simulate.Protocol(
        temperature=float(config.temperature), dt=dt, tau=tau, production_steps=n_steps,
        record_every=n_steps // 10, skin=float(config.dynamics.skin), seed=config.seed + 1,
    )  # fmt: skip
    out = simulate.sample(model, params, jnp.asarray(R0), protocol, progress=config.progress)
    return out.state.position, out.state.momentum / out.state.mass


def _stage_rdf_training(frames, model, params, ref, config, wd):
    c = config.rdf_train
    if int(c.n_updates) == 0:  # no RDF training: the force-matched GNN, the last AA frame
        wd.log("RDF training: n_updates = 0, skipped")
        return {"history": [], "params": wd.save_params("rdf_training", params),
                "start_positions": np.asarray(frames.positions[-1])}  # fmt: skip
    R, V = _equilibrate(model, params, frames.positions[-1], config,
                        int(c.equilibration_steps), float(c.dt), float(c.tau))  # fmt: skip
    # The loss costs O(frames x pairs x bins): the AA histogram is merged into
    # bins `rebin` times wider (exact for a histogram).
    r_t, g_t = (jnp.asarray(x) for x in observables.rebin_rdf(ref["rdf_r"], ref["rdf_g"],
                                                                int(c.rebin)))  # fmt: skip
    # The list is rebuilt between segments: no bead may move skin / 2 within one.
    # Nose-Hoover here is one thermostat variable (diffrax), restarted at each update.
    protocol = simulate.Protocol(
        temperature=float(config.temperature), dt=float(c.dt), tau=float(c.tau),
        production_steps=int(c.n_steps), record_every=int(c.record_every),
        skin=float(c.skin), seed=int(config.seed),
    )  # fmt: skip
    segments = int(c.segment_steps)
    adjoint = {"checkpoint": simulate.Checkpoint(segment_steps=segments),
               "backsolve": simulate.Backsolve(segment_steps=segments),
               "truncated": simulate.Truncated(segment_steps=segments)}[str(c.adjoint)]  # fmt: skip
    spec = simulate.TrajectorySpec(model, R, V, protocol, adjoint=adjoint)
    loss = losses.rdf_loss(r_t, g_t, simulate=spec, sigma=float(c.sigma),
                           start_frame=int(c.start_frame))  # fmt: skip
    # lr_decay: the learning rate is multiplied by it after every update. b1 = 0 (no
    # momentum): the first step (a sign step of size lr) removes most of the
    # force-matched model's RDF error; later gradients are ~10x smaller and noisy,
    # and without momentum Adam's steps shrink with them (by |g_k| / rms(g)). With
    # b1 = 0.9 the first gradient kept pushing: the loss fell 0.0196 -> 0.0022 in
    # one update, then rose to 0.0115 within four (lr 3e-3, 512 beads). Without
    # decay (lr_decay = 1) the later sign-like steps keep the weights wandering: the
    # loss scattered 0.0014-0.011 over 40 updates and the kept model's RDF TAE at
    # A = 0 (20 ps) was 0.182 Å (seed 1); with lr x 0.94 per update it fell
    # steadily to ~0.0005 and the TAE was 0.109 Å (seed 0: 0.122; x 0.90: 0.150).
    lr = optax.exponential_decay(float(c.lr), transition_steps=1, decay_rate=float(c.lr_decay))
    trainer = train.trajectory_matching(loss, optax.adam(lr, b1=float(c.b1)),
                                        frozen=tuple(k for k in params if k != "gnn"))  # fmt: skip
    n_updates = int(c.n_updates)
    wd.log(f"RDF training: {n_updates} updates of {int(c.n_steps)} steps each ({protocol}, "
           f"{type(adjoint).__name__} adjoint); the first compiles the differentiable "
           "trajectory and its gradient (about a minute)")  # fmt: skip
    # Each loss is one short noisy trajectory, and Adam can overshoot: with keep_best
    # the parameters with the lowest loss are kept; the later stages start from the
    # end of their trajectory, not the last one.
    fit = train.fit_sampling(trainer, params, n_updates, keep_best=bool(c.keep_best),
                             log=wd.log)  # fmt: skip
    params, R, history = fit.params, fit.end_positions, fit.history
    start = wrap(np.asarray(R), model.system.box)
    return {"history": history, "params": wd.save_params("rdf_training", params),
            "start_positions": start, "kept_update": fit.kept_update,
            "kept_loss": fit.kept_loss, "protocol": protocol.to_dict()}  # fmt: skip


def _probe(model, ref, protocol, config, wd):
    """The probe of the amplitude search, the omega scan and the validation, on the
    protocol REM sampled with."""
    d = config.dynamics
    return train.DynamicsProbe(
        model, protocol, fit_window=tuple(d.fit_window), n_blocks=int(d.n_blocks),
        reference_rdf=(ref["rdf_r"], ref["rdf_g"]), progress=config.progress, log=wd.log,
    )  # fmt: skip


# ----------------------------------------------------------------------------- plots


def _flag_text(ax, flags) -> None:
    """Out-of-tolerance results written in red on the plot that shows them."""
    if flags:
        ax.text(0.02, 0.02, "\n".join(f"! {f}" for f in flags), transform=ax.transAxes,
                color="red", fontsize=6.5, va="bottom", wrap=True)  # fmt: skip


def _flags(val: dict, bis: dict, ratio: float, config) -> dict[str, list[str]]:
    """The results outside this run's own tolerances, one sentence each, keyed by
    the plot that shows them: ``"D"`` (``msd.png``) and ``"rdf"`` (``rdf.png``)."""
    hf = config.hf
    flags: dict[str, list[str]] = {"D": [], "rdf": []}
    rtol = float(hf.refine_rtol)
    if abs(ratio - 1.0) > rtol:
        flags["D"].append(f"D_CG/D_AA = {ratio:.3f} misses 1 by more than the {rtol:.0%} "
                          "tolerance (hf.refine_rtol)")  # fmt: skip
    rel_err = val["D_err"] / val["D"] if val["D"] > 0 else float("inf")
    if not rel_err <= float(config.validation.max_D_rel_err):
        flags["D"].append(f"the validation D's block error is {rel_err:.1%}, above the "
                          f"{float(config.validation.max_D_rel_err):.0%} asked for "
                          "(validation.max_D_rel_err): a longer run is needed")  # fmt: skip
    if not bis["rdf_invariant"]:
        tol = float(hf.rdf_tolerance_A)
        flags["rdf"].append(f"U_HF shifts the RDF by {bis['rdf_shift_A']:.3f} Å, above the "
                            f"{tol} Å tolerance (hf.rdf_tolerance_A)")  # fmt: skip
    return flags


def _plots(wd, ref, stages, config, flags=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A = units.angstrom
    bis, val = stages["bisection"], stages["validation"]
    evals = bis["history"]
    # RDF
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(np.asarray(ref["rdf_r"]) / A, ref["rdf_g"], "k-", lw=2, label="AA")
    ax.plot(np.asarray(val["rdf_r"]) / A, val["rdf_g"], "C3--",
            label=f"CG, A = {bis['amplitude_kJmol_nm2']:.3g} kJ/mol nm² "
                  f"(TAE {val['rdf_tae_A']:.3f} Å)")  # fmt: skip
    if "rdf_g_A0" in bis:
        ax.plot(np.asarray(val["rdf_r"]) / A, bis["rdf_g_A0"], "C0:", label="CG, A = 0")
    ax.set(xlabel="r (Å)", ylabel="g(r)", title=f"{config.label}: RDF")
    ax.legend(fontsize=8)
    _flag_text(ax, (flags or {}).get("rdf", []))
    fig.tight_layout()
    fig.savefig(wd.plot_path("rdf.png"), dpi=110)
    plt.close(fig)
    # MSD
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    t_max = float(np.max(val["msd_t"]))
    t_ref = np.asarray(ref["msd_t"])
    keep = t_ref <= t_max + 1e-9
    ax.plot(t_ref[keep], np.asarray(ref["msd"])[keep] / A**2, "k-", lw=2, label="AA")
    if "msd_A0" in bis:
        ax.plot(bis["msd_t"], np.asarray(bis["msd_A0"]) / A**2, "C0:", label="CG, A = 0")
    ax.plot(val["msd_t"], np.asarray(val["msd"]) / A**2, "C3--",
            label=f"CG, A = {bis['amplitude_kJmol_nm2']:.3g} kJ/mol nm²")  # fmt: skip
    ax.set(xlabel="t (ps)", ylabel="MSD (Å²)", title=f"{config.label}: MSD")
    ax.legend(fontsize=8)
    _flag_text(ax, (flags or {}).get("D", []))
    fig.tight_layout()
    fig.savefig(wd.plot_path("msd.png"), dpi=110)
    plt.close(fig)
    # bisection trace: D against A, in evaluation order
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    a = np.array([e["A_kJmol_nm2"] for e in evals])
    D = np.array([e["D_cm2_per_s"] for e in evals]) * 1e5
    err = np.array([e["D_err"] / units.cm2_per_s for e in evals]) * 1e5
    order = np.argsort(a)
    ax.plot(a[order], D[order], "C0-", lw=1, alpha=0.5)
    ax.errorbar(a, D, yerr=err, fmt="o", color="C0", capsize=2)
    for k, (x, y) in enumerate(zip(a, D, strict=True)):
        ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    finals = bis.get("final_runs", [])
    if finals:
        fa = [f["A_kJmol_nm2"] for f in finals]
        fd = [f["D"] / units.cm2_per_s * 1e5 for f in finals]
        fe = [f["D_err"] / units.cm2_per_s * 1e5 for f in finals]
        ax.errorbar(fa, fd, yerr=fe, fmt="s", color="C3", capsize=2, mfc="none",
                    label="validation run(s)")  # fmt: skip
    ax.axhline(ref["D_AA_cm2_per_s"] * 1e5, color="k", ls="--", label="D_AA")
    ax.axvline(bis["amplitude_kJmol_nm2"], color="C3", ls=":", label="tuned A")
    ax.set(xlabel="A (kJ/mol nm²)", ylabel="D (1e-5 cm²/s)", yscale="log",
           title=f"{bis.get('method', 'bisection')} on A (ω = {bis['omega_per_nm']:g} nm⁻¹), "
                 "evaluation order labelled")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(wd.plot_path("bisection.png"), dpi=110)
    plt.close(fig)
    # omega scan
    scan = stages.get("omega_scan", {}).get("rows")
    if scan:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        w = [row["omega_per_nm"] for row in scan]
        ax.plot(w, [row["rdf_shift_A"] for row in scan], "o-", label="RDF shift from A = 0")
        if stages["omega_scan"].get("noise_A") is not None:
            ax.axhline(stages["omega_scan"]["noise_A"], color="gray", ls=":",
                       label="A = 0 vs A = 0 (other seed): noise")  # fmt: skip
        ax.set(xscale="log", xlabel="ω (nm⁻¹)", ylabel="RDF TAE (Å)",
               title=f"U_HF at A = {stages['omega_scan']['amplitude_kJmol_nm2']:.3g} "
                     "kJ/mol nm²")  # fmt: skip
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(wd.plot_path("omega_scan.png"), dpi=110)
        plt.close(fig)
    # training curves
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    rem = stages["rem"]["history"]
    s = [list(h["values"].values()) for h in rem]
    names = list(rem[0]["values"]) if rem else []
    for k, name in enumerate(names):
        v = np.array([row[k] for row in s])
        axes[0].plot(v / v[-1], "o-", label=name.strip("/"))
    axes[0].set(xlabel="REM iteration", ylabel="value / final", title="REM (LJ)")
    axes[0].legend(fontsize=8)
    path = os.path.join(wd.path, "train_fm", "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        recs = [r for r in recs if "val_force_rmse_kcal_per_mol_per_A" in r]
        rmse = [np.ravel(r["val_force_rmse_kcal_per_mol_per_A"])[0] for r in recs]
        axes[1].plot([r["step"] for r in recs], rmse, "o-")
    axes[1].set(xlabel="update", ylabel="val force RMSE (kcal/mol/Å)", title="force matching")
    h = stages["rdf_training"]["history"]
    if h:
        axes[2].plot([x["update"] for x in h], [x["loss"] for x in h], "o-")
    axes[2].set(xlabel="Adam update", ylabel="RDF loss (MSE)", title="RDF through the adjoint")
    fig.tight_layout()
    fig.savefig(wd.plot_path("training.png"), dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the stages; returns (and writes) ``results.json``'s content."""
    wd = workflow.Workdir(workdir)
    wd.plan(STAGE_WEIGHTS)
    t_start = time.perf_counter()
    frames = datasets.load(config.dataset, wrapped=True)
    unwrapped = datasets.load(config.dataset)
    obs = datasets.load_observables(config.dataset)
    n = frames.n_particles
    system = simulate.System.create(box=frames.box, species=np.zeros(n, np.int32),
                                    masses=np.asarray(frames.masses))  # fmt: skip
    wd.log(f"{config.dataset}: {frames.n_frames} frames, {n} beads, box "
           f"{np.diag(frames.box).round(4).tolist()} nm, {config.temperature} K")  # fmt: skip
    stages: dict = {}
    stages["reference"] = ref = wd.stage(
        "reference", lambda: _stage_reference(unwrapped, obs, config)
    )
    wd.log(f"AA: D = {ref['D_AA_cm2_per_s']:.4g} +- {ref['D_AA_err_cm2_per_s']:.2g} cm^2/s "
           f"(fit {ref['fit_window_ps']} ps)")  # fmt: skip
    model, lj_model = _build(system, config)
    # one protocol samples the CG model in REM, the amplitude search, the omega scan
    # and the validation
    protocol = _protocol(config)
    wd.log(f"CG sampling protocol (REM, amplitude search, validation): {protocol}")
    stages["rem"] = rem = wd.stage(
        "rem", lambda: _stage_rem(frames, lj_model, protocol, config, wd)
    )
    stages["force_matching"] = fm = wd.stage(
        "force_matching", lambda: _stage_fm(frames, model, rem, config, wd)
    )
    template = model.init_fn(jax.random.key(0), jnp.asarray(frames.positions[0]))
    p_fm = wd.load_params(fm["params"], template)
    stages["rdf_training"] = rdf_t = wd.stage(
        "rdf_training",
        lambda: _stage_rdf_training(frames, model, p_fm, ref, config, wd),
    )
    params = wd.load_params(rdf_t["params"], template)
    R0 = jnp.asarray(rdf_t["start_positions"], jnp.float32)
    probe = _probe(model, ref, protocol, config, wd)
    cache_file = os.path.join("stages", "hf_evaluations.json")
    cache = wd.read_json(cache_file)
    save = lambda c: wd.write_json(cache_file, c)  # noqa: E731
    hf = config.hf
    lo, hi = (float(v) for v in hf.bracket)

    def bisection_stage():
        if hf.target_D is None:
            target = ref["D_AA"]
        elif hf.target_D == "between_ends":  # smoke runs: a target the bracket must contain
            ends = [probe(train.set_high_frequency(params, "hf", a, float(hf.omega)), R0,
                          label=f"A = {a:.5g} kJ/mol nm^2: ") for a in (lo, hi)]  # fmt: skip
            for a, res in zip((lo, hi), ends, strict=True):
                cache[train.evaluation_key(a, float(hf.omega))] = res
            target = float(np.sqrt(ends[0]["D"] * ends[1]["D"]))
        else:
            target = float(hf.target_D)
        search = train.AmplitudeSearch.from_config(
            hf, xtol=float(hf.xtol_fraction) * (hi - lo), ftol=float(hf.ftol_fraction) * target,
            final_production_steps=int(config.validation.production_steps),
        )  # fmt: skip
        # the probe's protocol (config.dynamics) runs the search and the validation
        tuning = train.tune_high_frequency(probe, params, R0, target_D=target, search=search,
                                           cache=cache, on_evaluation=save, log=wd.log)  # fmt: skip
        a0 = cache[train.evaluation_key(lo, float(hf.omega))]
        return {
            "amplitude_kJmol_nm2": tuning.amplitude, "omega_per_nm": tuning.omega,
            "bracket_kJmol_nm2": (lo, hi), "converged": tuning.bisection.converged,
            "final_bracket_kJmol_nm2": tuning.bisection.bracket,
            "history": tuning.bisection.history, "n_evaluations": len(tuning.bisection.history),
            "D_final": tuning.final["D"], "rdf_shift_A": tuning.rdf_shift_A,
            "rdf_tolerance_A": tuning.rdf_tolerance_A, "rdf_invariant": tuning.rdf_invariant,
            "rdf_g_A0": a0["rdf_g"], "msd_A0": a0["msd"], "msd_t": a0["msd_t"],
            "D_A0": a0["D"], "params": wd.save_params("tuned", tuning.params),
            "method": str(hf.method), "estimate": str(hf.estimate), "target_D": target,
            "final_runs": tuning.final_runs,
        }  # fmt: skip

    stages["bisection"] = bis = wd.stage("bisection", bisection_stage)

    def omega_stage():
        sc = config.omega_scan
        # production_steps None: the probe's own length, so the bisection's runs at
        # A = 0 and at the top of the bracket (omega of the bisection) are reused.
        shared = sc.production_steps is None
        n_prod = None if shared else int(sc.production_steps)
        omegas = [float(w) for w in sc.omegas_per_nm]
        p0 = train.set_high_frequency(params, "hf", 0.0)
        key0 = train.evaluation_key(0.0, float(hf.omega))
        if shared and key0 in cache:
            base = cache[key0]
        else:
            base = probe(p0, R0, label="omega scan, A = 0: ", production_steps=n_prod)
        noise = None
        if sc.noise_run:  # the same model with another seed: the RDF's sampling noise
            noise = probe(p0, R0, label="omega scan, A = 0, other seed: ",
                          production_steps=n_prod, seed=config.seed + 7)  # fmt: skip
        amp = hi if sc.amplitude is None else float(sc.amplitude)
        rows = train.omega_scan(probe, params, R0, omegas, amplitude=amp, baseline=base,
                                production_steps=n_prod, cache=cache if shared else None,
                                on_evaluation=save if shared else None)  # fmt: skip
        return {"rows": rows, "amplitude_kJmol_nm2": amp,
                "noise_A": None if noise is None
                else train.rdf_tae_A(base["rdf_r"], base["rdf_g"], noise["rdf_g"]),
                "production_steps": probe.production_steps if shared else n_prod}  # fmt: skip

    if config.omega_scan.enabled:
        stages["omega_scan"] = wd.stage("omega_scan", omega_stage)
    tuned = wd.load_params(bis["params"], template)

    def validation_stage():
        # the bisection's final run at the tuned A is the validation run
        n_val = int(config.validation.production_steps)
        key = train.evaluation_key(bis["amplitude_kJmol_nm2"], float(hf.omega), n_val)
        out = dict(cache[key]) if key in cache else probe(tuned, R0, label="validation: ",
                                                          production_steps=n_val)  # fmt: skip
        out.pop("final_positions", None)
        d_cgs = out["D"] / units.cm2_per_s
        wd.log(f"validation ({n_val} steps at the tuned A): D = {d_cgs:.4g} cm^2/s, "
               f"RDF TAE {out['rdf_tae_A']:.3f} Å, <T> {out['temperature_K']:.1f} K")  # fmt: skip
        return out

    stages["validation"] = val = wd.stage("validation", validation_stage)
    ratio = val["D"] / ref["D_AA"]
    by_plot = _flags(val, bis, ratio, config)
    flags = by_plot["D"] + by_plot["rdf"]
    for flag in flags:
        wd.log(f"WARNING: {flag}")
    _plots(wd, ref, stages, config, by_plot)
    results = {
        "experiment": f"{config.label} dynamics (paper 004)",
        "dataset": config.dataset,
        "rdf_tae_A": val["rdf_tae_A"],
        "rdf_range_A": (0.0, float(config.rdf_r_max) / units.angstrom),
        "D_CG_cm2_per_s": val["D"] / units.cm2_per_s,
        "D_CG_err_cm2_per_s": val["D_err"] / units.cm2_per_s,
        "D_AA_cm2_per_s": ref["D_AA_cm2_per_s"],
        "D_AA_err_cm2_per_s": ref["D_AA_err_cm2_per_s"],
        "D_ratio": ratio,
        "D_A0_cm2_per_s": bis["D_A0"] / units.cm2_per_s,
        "fit_window_ps": ref["fit_window_ps"],
        "A_kJmol_nm2": bis["amplitude_kJmol_nm2"],
        "omega_per_nm": bis["omega_per_nm"],
        "rdf_shift_from_A0_A": bis["rdf_shift_A"],
        "rdf_invariant": bis["rdf_invariant"],
        "lj": {"sigma_nm": rem["sigma_nm"], "epsilon_kJ_per_mol": rem["epsilon_kJ_per_mol"]},
        "force_matching_val_rmse_kcal_per_mol_per_A": fm["val_force_rmse_kcal_per_mol_per_A"],
        "rdf_training_loss": [h["loss"] for h in rdf_t["history"]],
        "bisection": [{k: v for k, v in h.items()} for h in bis["history"]],
        "search_method": bis.get("method", "bisection"),
        "D_target_cm2_per_s": bis.get("target_D", ref["D_AA"]) / units.cm2_per_s,
        "validation_runs": [
            {
                "A_kJmol_nm2": f["A_kJmol_nm2"],
                "D_cm2_per_s": f["D"] / units.cm2_per_s,
                "D_ratio": f["D"] / ref["D_AA"],
                "temperature_K": f["temperature_K"],
            }
            for f in bis.get("final_runs", [])
        ],
        "omega_scan": stages.get("omega_scan", {}).get("rows"),
        "flags": flags,
        "validation_temperature_K": val["temperature_K"],
        "wall_s": {k: v.get("stage_wall_s") for k, v in stages.items()},
        "total_wall_s_this_run": time.perf_counter() - t_start,
        "protocol": protocol.to_dict(),
        "config": config.to_dict(),
    }
    wd.write_results(results)
    rows = [{"RDF TAE Å": val["rdf_tae_A"], "D_CG 1e-5 cm²/s": 1e5 * results["D_CG_cm2_per_s"],
             "D_AA 1e-5 cm²/s": 1e5 * ref["D_AA_cm2_per_s"], "D_CG/D_AA": ratio,
             "A kJ/mol nm²": bis["amplitude_kJmol_nm2"], "σ nm": rem["sigma_nm"],
             "ε kJ/mol": rem["epsilon_kJ_per_mol"]}]  # fmt: skip
    print(workflow.format_table(rows, list(rows[0])))
    return results
