"""Structure-matching methods side by side on the same targets (issue 20).

On the shipped argon (``argon_864``, 864 atoms, 94.4 K) and SPC/E
(``spce_512``, 512 COM beads, 300 K) frames, REM, the adjoint and DiffTRe fit
one LJ pair (``sigma``, ``epsilon``; switched to zero over the last 0.05 nm of
the cutoff), IBI and IMC a pair spline on the same cutoff, to the AA
structure, for a fixed budget of updates (or to convergence, when the method
reports it):

- ``rem``: relative entropy minimisation against the AA frames
  (``train.relative_entropy_trainer``, Newton-Raphson, reweighting);
- ``adjoint``: Adam on the smeared-RDF loss of a differentiable Nose-Hoover
  trajectory per update (``train.trajectory_matching``, diffrax checkpointed adjoint);
- ``difftre``: Adam on the same RDF loss of reweighted ensemble averages
  (``train.difftre_trainer``), the samples reused while ``N_eff / N`` allows;
- ``ibi``, ``imc``: iterative Boltzmann inversion and inverse Monte Carlo of a
  pair spline (``train.ibi_trainer``, ``train.imc_trainer``; no gradients),
  from the potential of mean force ``-kT ln g``.

Methods are entries of :data:`METHODS` (name -> function building the method's
:class:`~cgjax.train.SamplingTrainer` and its cost accounting), so more plug in.
Every ``eval.every`` updates, and at the end with a longer run, each method's
parameters are sampled by one common Nose-Hoover protocol and their histogram
RDF compared with the AA one (TAE over ``0..rdf_r_max``, Å).

    python -m cgjax.run experiments/structure_methods.py --config configs/structure_methods.py:quick

Outputs: ``results.json`` (``table``: system, method, final RDF TAE (Å),
pressure (bar) and its error against the AA pressure (argon only; None for
SPC/E, whose molecular virial the CG frames cannot give), simulated ps,
wall s, gradient evaluations, sigma, epsilon), ``plots/methods.png`` (every
method's RDF against the AA target and its TAE per update), ``log.txt``, ``stages/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cgjax import datasets, losses, observables, potentials, simulate, train, units, workflow

DATASETS = {"argon": ("argon_864", "argon"), "spce": ("spce_512", "SPC/E water")}
#: The AA pair potential of a system whose CG map is the identity (argon, Rahman 1964 as
#: ``cgjax/reference/_systems.py`` builds it): sigma nm, epsilon kJ/mol, cutoff, switch start nm.
AA_PAIR = {"argon": (0.3405, 119.8 * units.kB, 3.3 * 0.3405, 3.0 * 0.3405)}


class Setup(NamedTuple):
    """One system's shared pieces: its model, AA target, sampling protocol and start."""

    name: str
    model: Any
    p_start: Any
    frames: np.ndarray  # [T, N, 3] wrapped AA frames (nm)
    r: np.ndarray  # [B] RDF bin centres (nm)
    g_aa: np.ndarray  # [B] AA RDF
    protocol: simulate.Protocol
    R0: Any
    temperature: float
    p_aa: float | None  # AA pressure (bar), where the CG frames determine it


class Method(NamedTuple):
    """A method of the comparison: its trainer, its model and what its updates cost.

    Attributes:
      trainer: the :class:`~cgjax.train.SamplingTrainer`.
      simulated_ps: ``simulated_ps(state, history) -> ps`` simulated so far
        (``history``: the updates' metrics).
      model: the :class:`~cgjax.potentials.EnergyModel` it trains.
      p_start: its start parameters.
      gradients_per_update: parameter gradients of an objective one update evaluates
        (0: an inversion method such as IBI, which needs none).
    """

    trainer: Any
    simulated_ps: Callable[[Any, list], float]
    model: Any
    p_start: Any
    gradients_per_update: int = 1


def _relative_adam(lr: float) -> optax.GradientTransformation:
    """Adam steps of ``lr`` times each parameter's size (sigma and epsilon differ in scale)."""
    return optax.chain(optax.scale_by_adam(b1=0.5), optax.scale_by_param_block_rms(),
                       optax.scale_by_learning_rate(lr))  # fmt: skip


def _per_sampling_ps(p: simulate.Protocol) -> float:
    return (p.equilibration_steps + p.production_steps) * p.dt


def rem_method(s: Setup, config) -> Method:
    c = config.rem
    stride = max(1, len(s.frames) // int(c.reference_frames))
    settings = train.REMSettings(
        n_iterations=int(config.n_updates), ess_threshold=float(c.ess_threshold),
        max_relative_step=float(c.max_relative_step), tol=float(c.tol),
    )  # fmt: skip
    trainer = train.relative_entropy_trainer(s.model, s.frames[::stride], s.protocol,
                                             settings=settings, R0=s.R0)  # fmt: skip
    ps = _per_sampling_ps(s.protocol)
    return Method(trainer, lambda st, h: st.n_samplings * ps, s.model, s.p_start)


def adjoint_method(s: Setup, config) -> Method:
    c = config.adjoint
    p = simulate.Protocol(temperature=s.temperature, dt=float(c.dt), tau=float(c.tau),
                          production_steps=int(c.n_steps), record_every=int(c.record_every),
                          skin=float(config.sampling.skin), seed=int(config.seed))  # fmt: skip
    V0 = simulate.maxwell_boltzmann(jax.random.key(config.seed), s.model.system, p.kT)
    adjoint = simulate.Checkpoint(segment_steps=int(c.segment_steps))
    spec = simulate.TrajectorySpec(s.model, s.R0, V0, p, adjoint=adjoint)
    loss = losses.rdf_loss(s.r, s.g_aa, simulate=spec, sigma=float(c.sigma))
    trainer = train.trajectory_matching(loss, _relative_adam(float(c.lr)))
    return Method(trainer, lambda st, h: len(h) * p.production_steps * p.dt, s.model, s.p_start)


def difftre_method(s: Setup, config) -> Method:
    c = config.difftre
    target = train.rdf_target(s.r, s.g_aa, s.model.system.box, sigma=float(c.sigma))
    trainer = train.difftre_trainer(s.model, [target], _relative_adam(float(c.lr)), s.protocol,
                                    s.R0, settings=train.DiffTReSettings(
                                        ess_threshold=float(c.ess_threshold)))  # fmt: skip
    return Method(trainer, lambda st, h: st.simulated_ps, s.model, s.p_start)


def _spline_start(s: Setup, config) -> tuple[Any, Any]:
    """The pair spline on the system and its start, the potential of mean force -kT ln g."""
    c = config.inversion
    spline = potentials.SplinePair(n_basis=int(c.n_basis), r_min=float(c.r_min),
                                   cutoff=float(config.cutoff))  # fmt: skip
    model = potentials.energy_model(spline, system=s.model.system)
    p0 = model.init_fn(jax.random.key(0), s.R0)
    return model, train.potential_of_mean_force(model, p0, (s.r, s.g_aa), s.temperature)


def ibi_method(s: Setup, config) -> Method:
    c = config.inversion
    model, p0 = _spline_start(s, config)
    pressure = s.p_aa if bool(c.pressure_correction) else None
    settings = train.IBISettings(alpha=float(c.alpha), pressure=pressure)
    trainer = train.ibi_trainer(model, (s.r, s.g_aa), s.protocol, settings=settings, R0=s.R0)
    return Method(trainer, lambda st, h: st.simulated_ps, model, p0, 0)


def imc_method(s: Setup, config) -> Method:
    c = config.inversion
    model, p0 = _spline_start(s, config)
    pressure = s.p_aa if bool(c.pressure_correction) else None
    settings = train.IMCSettings(regularization=float(c.regularization),
                                 max_step_kT=float(c.imc_max_step_kT),
                                 pressure=pressure)  # fmt: skip
    trainer = train.imc_trainer(model, (s.r, s.g_aa), s.protocol, settings=settings, R0=s.R0)
    return Method(trainer, lambda st, h: st.simulated_ps, model, p0, 0)


#: name -> ``fn(setup, config) -> Method``; the comparison runs ``config.methods`` in order.
METHODS: dict[str, Callable[[Setup, Any], Method]] = {
    "rem": rem_method,
    "adjoint": adjoint_method,
    "difftre": difftre_method,
    "ibi": ibi_method,
    "imc": imc_method,
}


def _setup(name: str, config) -> Setup:
    dataset, _ = DATASETS[name]
    frames = datasets.load(dataset, wrapped=True)
    obs = datasets.load_observables(dataset)
    n = frames.n_particles
    system = simulate.System.create(box=frames.box, species=np.zeros(n, np.int32),
                                    masses=np.asarray(frames.masses))  # fmt: skip
    cut = float(config.cutoff)
    sigma, epsilon = (float(v) for v in getattr(config.lj_start, name))
    lj = potentials.LennardJones(n_species=1, sigma=sigma, epsilon=epsilon, cutoff=cut,
                                 r_onset=cut - 0.05)  # fmt: skip
    model = potentials.energy_model(lj, system=system)
    X = np.asarray(frames.positions)
    p_start = model.init_fn(jax.random.key(0), jnp.asarray(X[0]))
    r_aa, g_aa = np.asarray(obs["rdf"]["r_nm"]), np.asarray(obs["rdf"]["g"])
    factor = int(round(float(config.rdf_bin) / (r_aa[1] - r_aa[0])))
    r, g = observables.rebin_rdf(r_aa, g_aa, factor)
    keep = r < float(config.rdf_r_max)
    temperature = float(frames.temperature)
    protocol = simulate.Protocol.from_config(config.sampling, temperature=temperature,
                                             seed=int(config.seed))  # fmt: skip
    return Setup(name, model, p_start, X, r[keep], g[keep], protocol,
                 jnp.asarray(X[-1], jnp.float32), temperature,
                 _aa_pressure(name, system, X, protocol.kT))  # fmt: skip


def _pressure_bar(model, params, X, kT) -> float | None:
    """Mean virial pressure of frames ``X`` (bar), or None without a pressure observable."""
    pressure = getattr(observables, "pressure", None)
    return None if pressure is None else float(pressure(model, params, X, kT=kT).mean)


def _aa_pressure(name: str, system, X, kT) -> float | None:
    """The AA pressure (bar) where the mapped frames determine it: argon, whose AA
    potential is one LJ pair (``cgjax/reference/_systems.py``); None for SPC/E (its
    molecular virial needs the atoms)."""
    if name not in AA_PAIR:
        return None
    sigma, epsilon, cutoff, r_onset = AA_PAIR[name]
    lj = potentials.LennardJones(n_species=1, sigma=sigma, epsilon=epsilon, cutoff=cutoff,
                                 r_onset=r_onset)  # fmt: skip
    model = potentials.energy_model(lj, system=system)
    params = model.init_fn(jax.random.key(0), jnp.asarray(X[0]))
    return _pressure_bar(model, params, X[:: max(1, len(X) // 100)], kT)


def _evaluate(s: Setup, model, params, config, steps: int) -> dict:
    """A Nose-Hoover run of ``params`` (the common protocol, ``steps`` recorded): RDF, TAE
    and pressure."""
    p = s.protocol.replace(production_steps=steps, seed=int(config.seed) + 7)
    out = simulate.sample(model, params, s.R0, p, progress=False)
    r_max, n_bins = float(s.r[-1] + 0.5 * (s.r[1] - s.r[0])), len(s.r)
    X = out.trajectory.positions
    g = np.asarray(observables.rdf(X, model.system.box, r_max=r_max, n_bins=n_bins).g)
    return {"g": g, "rdf_tae_A": train.rdf_tae_A(s.r, s.g_aa, g),
            "pressure_bar": _pressure_bar(model, params, X, p.kT)}  # fmt: skip


def _lj_values(params) -> dict:
    if not (isinstance(params, dict) and {"sigma", "epsilon"} <= set(params)):
        return {"sigma_nm": None, "epsilon_kJ_per_mol": None}
    return {"sigma_nm": float(np.asarray(params["sigma"]).ravel()[0]),
            "epsilon_kJ_per_mol": float(np.asarray(params["epsilon"]).ravel()[0])}  # fmt: skip


def _run_method(s: Setup, name: str, config, wd) -> dict:
    """One method on one system: updates with evaluations every ``eval.every``, then the final."""
    method = METHODS[name](s, config)
    trainer, state, model = method.trainer, None, method.model
    n_eval = int(config.eval.production_steps)
    curve = [{"update": 0, **_evaluate(s, model, method.p_start, config, n_eval)}]
    history, t_train, n, converged = [], 0.0, 0, False
    log = lambda msg: wd.log(f"[{s.name}] {msg}")  # noqa: E731
    for n in range(1, int(config.n_updates) + 1):
        t0 = time.perf_counter()
        fit = train.fit_sampling(trainer, method.p_start if state is None else state, 1, log=log)
        t_train += time.perf_counter() - t0
        state, converged = fit.state, fit.converged
        h = {k: v for k, v in fit.history[0].items() if isinstance(v, int | float | bool | None)}
        history.append({**h, **_lj_values(state.params)})
        if n % int(config.eval.every) == 0 or converged or n == int(config.n_updates):
            ev = _evaluate(s, model, state.params, config, n_eval)
            curve.append({"update": n, **ev})
            log(f"{name} after update {n}: RDF TAE {ev['rdf_tae_A']:.3f} A")
        if converged:
            break
    final = _evaluate(s, model, state.params, config, int(config.eval.final_production_steps))
    p_err = None if None in (final["pressure_bar"], s.p_aa) else final["pressure_bar"] - s.p_aa
    row = {"system": s.name, "method": name, "rdf_tae_A": final["rdf_tae_A"],
           "pressure_bar": final["pressure_bar"], "pressure_error_bar": p_err,
           "simulated_ps": method.simulated_ps(state, history),
           "wall_s": t_train, "updates": n,
           "gradient_evaluations": n * method.gradients_per_update, "converged": converged,
           **_lj_values(state.params)}  # fmt: skip
    tae = [{"update": e["update"], "rdf_tae_A": e["rdf_tae_A"]} for e in curve]
    return {"row": row, "g": final["g"], "history": history, "tae_curve": tae}


def _plot(wd, setups: dict, runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(setups)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 3.8 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        s = setups[name]
        ax, bx = axes[row]
        ax.plot(s.r / units.angstrom, s.g_aa, "k-", lw=2, label="AA")
        for (sys_name, method), res in runs.items():
            if sys_name != name:
                continue
            ax.plot(s.r / units.angstrom, res["g"], lw=1,
                    label=f"{method} (TAE {res['row']['rdf_tae_A']:.3f} Å)")  # fmt: skip
            c = res["tae_curve"]
            bx.plot([e["update"] for e in c], [e["rdf_tae_A"] for e in c], "o-", label=method)
        ax.set(xlabel="r (Å)", ylabel="g(r)", title=f"{DATASETS[name][1]}: RDF")
        bx.set(xlabel="update", ylabel="RDF TAE (Å)", title=f"{DATASETS[name][1]}: TAE per update",
               yscale="log")  # fmt: skip
        ax.legend(fontsize=8)
        bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(wd.plot_path("methods.png"), dpi=110)
    plt.close(fig)


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs every method on every system; returns (and writes) ``results.json``'s content."""
    wd = workflow.Workdir(workdir)
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown or any(s not in DATASETS for s in config.systems):
        raise ValueError(
            f"structure_methods: unknown methods {unknown} (known {sorted(METHODS)}) "
            f"or systems {list(config.systems)} (known {sorted(DATASETS)})"
        )
    wd.plan({f"{s}_{m}": 1.0 for s in config.systems for m in config.methods})
    setups, runs, rows = {}, {}, []
    for name in config.systems:
        s = setups[name] = _setup(name, config)
        wd.log(f"{name}: {len(s.frames)} AA frames, {s.frames.shape[1]} beads, "
               f"{s.temperature:g} K; sampling {s.protocol}")  # fmt: skip
        for method in config.methods:
            res = wd.stage(f"{name}_{method}", lambda s=s, m=method: _run_method(s, m, config, wd))
            runs[(name, method)] = res
            rows.append(res["row"])
    _plot(wd, setups, runs)
    cols = ["system", "method", "rdf_tae_A", "pressure_bar", "pressure_error_bar",
            "simulated_ps", "wall_s", "updates", "gradient_evaluations", "sigma_nm",
            "epsilon_kJ_per_mol"]  # fmt: skip
    table = workflow.format_table(rows, cols)
    wd.log(f"final RDF TAE (0-{float(config.rdf_r_max):g} nm, Å), costs:\n{table}")
    results = {"table": rows, "rdf_r_nm": {n: s.r for n, s in setups.items()},
               "aa_pressure_bar": {n: s.p_aa for n, s in setups.items()},
               "aa_rdf": {n: s.g_aa for n, s in setups.items()},
               "rdf": {f"{k[0]}_{k[1]}": v["g"] for k, v in runs.items()},
               "tae_curves": {f"{k[0]}_{k[1]}": v["tae_curve"] for k, v in runs.items()},
               "histories": {f"{k[0]}_{k[1]}": v["history"] for k, v in runs.items()}}  # fmt: skip
    wd.write_results(results)
    return results
