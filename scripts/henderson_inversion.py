"""Henderson's theorem at acceptance length: IBI and IMC recover an LJ fluid's pair potential.

The target is 256 LJ atoms (argon: sigma 0.3405 nm, epsilon 0.996 kJ/mol,
94.4 K, 20.71 nm^-3; cutoff 0.85 nm switched from 0.8 nm) sampled with BAOAB
Langevin (20 fs, 1/ps), the integrator the inversions sample with. IBI (with
the pressure ramp towards the target's virial pressure) and IMC (with the
pressure row, ``train.IMCSettings(pressure=...)``; ``--no-pressure`` drops
both) start from the potential of mean force. Printed per update: the RDF TAE (A) against the
target, the pressure (bar) and the largest |U - U_LJ| over sigma <= r < r_c
(kJ/mol). The statistical floor of the TAE is the TAE between the two halves
of the target run (each half as long as ... see the output).

    PYTHONPATH=. python scripts/henderson_inversion.py --target-steps 100000 \
        --steps 10000 --updates 10 --out henderson.json

``--target-cache FILE.npz`` stores (or reuses) the target trajectory, so a long
target is simulated once, and its RDFs and pressure in ``FILE_rdf.npz`` (the
RDF of 40,000 frames takes minutes). ``--acceleration anderson`` runs IBI with
Anderson mixing (``train.IBISettings(acceleration="anderson")``).
``--methods oracle`` also samples the true LJ projected on the spline basis
(the answer IBI/IMC should reach) as long as the final check: its TAE is
the floor any inversion can reach at this sampling, and its ``|U - U_LJ|``
the floor of the spline representation. Every final row also
records where the largest ``|U - U_LJ|`` sits and the error profile.
``--checkpoint PREFIX.npz`` saves each plain IBI/IMC run after every update and
resumes it (with ``--updates`` raised, a run continues where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import observables, potentials, simulate, train, units
from cgjax.potentials._cutoff import smooth_switch

SIGMA, EPSILON, T = 0.3405, 0.996, 94.4
CUTOFF, ONSET, DT, FRICTION = 0.85, 0.8, 0.02, 1.0


def lj_system():
    """``(system, LJ model, its params, fcc start [N, 3] nm)``: 256 atoms at 20.71 nm^-3."""
    R, L = simulate.fcc_lattice(4, 20.71)
    n = R.shape[0]
    system = simulate.System.create(box=np.eye(3) * L, species=np.zeros(n, np.int32),
                                    masses=np.full(n, 39.948))  # fmt: skip
    lj = potentials.LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, r_onset=ONSET)
    model = potentials.energy_model(lj, system=system)
    R = jnp.asarray(R, jnp.float32)
    return system, model, model.init_fn(jax.random.key(0), R), R


def target_run(n_steps: int, every: int = 20):
    quiet = simulate.Monitor(progress=False)
    system, model, p_true, R = lj_system()
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R)
    hot = simulate.nvt_langevin(model.energy_fn(p_true), system, dt=0.004, kT=4 * units.kB * T,
                                friction=5.0)  # fmt: skip
    out = simulate.run(hot, hot.init_fn(jax.random.key(2), R, neighbor=nb), n_steps=2000,
                       record_every=100, neighbor_fn=nf, neighbor=nb, monitor=quiet)  # fmt: skip
    sim = simulate.nvt_langevin(model.energy_fn(p_true), system, dt=DT, kT=units.kB * T,
                                friction=FRICTION)  # fmt: skip
    state = sim.init_fn(jax.random.key(1), out.state.position, neighbor=out.neighbor)
    out = simulate.run(sim, state, n_steps=2000, record_every=100, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=quiet)  # fmt: skip
    out = simulate.run(sim, out.state, n_steps=n_steps, record_every=every, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=simulate.Monitor(progress=True))  # fmt: skip
    X = np.asarray(out.trajectory.positions)
    return system, model, p_true, X


def lj_error(spline, params, profile=False):
    """Largest ``|U - U_LJ|`` over sigma <= r < r_c (kJ/mol); with ``profile``, also
    ``(r_at_max, [(r, U - U_LJ)] on a 0.025 nm grid)``.

    Compared as they stand, with no constant shift: the spline and the target's
    switched LJ are both 0 at r_c, which fixes Henderson's free constant."""
    r = jnp.linspace(SIGMA, CUTOFF, 400)
    U = spline.basis(r) @ jnp.reshape(params["coefficients"], -1)
    U_lj = potentials.lennard_jones(r, SIGMA, EPSILON) * smooth_switch(r, ONSET, CUTOFF)
    d = np.asarray(U - U_lj)
    if not profile:
        return float(np.max(np.abs(d)))
    grid = np.arange(SIGMA, CUTOFF, 0.025)
    rows = [(round(float(x), 4), round(float(np.interp(x, np.asarray(r), d)), 4)) for x in grid]
    return float(np.max(np.abs(d))), float(r[np.argmax(np.abs(d))]), rows


def projected_lj(spline, smodel, X0):
    """The spline's coefficients fitted (least squares) to the target's switched LJ."""
    r = jnp.linspace(spline.r_min, CUTOFF, 2000)
    U_lj = potentials.lennard_jones(r, SIGMA, EPSILON) * smooth_switch(r, ONSET, CUTOFF)
    c = np.linalg.lstsq(np.asarray(spline.basis(r)), np.asarray(U_lj), rcond=None)[0]
    p = smodel.init_fn(jax.random.key(0), X0)
    return {**p, "coefficients": jnp.asarray(c.reshape(np.shape(p["coefficients"])), jnp.float32)}


def load_target(a):
    """``(system, model, p_true, X)`` from ``--target-cache`` or a new target run."""
    if a.target_cache and os.path.exists(a.target_cache):
        X = np.load(a.target_cache)["X"]
        system, model, p_true, _ = lj_system()
        print(f"target: {len(X)} frames from {a.target_cache}", flush=True)
        return system, model, p_true, X
    system, model, p_true, X = target_run(a.target_steps, a.target_every)
    if a.target_cache:
        np.savez(a.target_cache, X=X)
    return system, model, p_true, X


def target_rdf(a, system, model, p_true, X):
    """``(RDF, g of the first half, of the second, pressure (bar))``, cached beside
    ``--target-cache``."""
    import types

    cache = a.target_cache[: -len(".npz")] + "_rdf.npz" if a.target_cache else None
    if cache and os.path.exists(cache):
        d = np.load(cache)
        P = types.SimpleNamespace(mean=float(d["P"]), sem=float(d["Psem"]))
        return types.SimpleNamespace(r=d["r"], g=d["g"]), d["g1"], d["g2"], P
    h = len(X) // 2  # the halves' RDFs, and their mean as the target's (one histogram pass)
    half1 = observables.rdf(X[:h], system.box, r_max=1.0, n_bins=200)
    g1, g2 = half1.g, observables.rdf(X[h : 2 * h], system.box, r_max=1.0, n_bins=200).g
    target = types.SimpleNamespace(r=half1.r, g=0.5 * (g1 + g2))
    P = observables.pressure(model, p_true, X[:: max(1, len(X) // 2000)], kT=units.kB * T)
    if cache:
        np.savez(cache, r=np.asarray(target.r), g=np.asarray(target.g), g1=np.asarray(g1),
                 g2=np.asarray(g2), P=P.mean, Psem=P.sem)  # fmt: skip
    return target, g1, g2, P


def final_check(name, smodel, params, start, protocol, target, spline, n_steps):
    """TAE (A) of ``params`` sampled ``n_steps`` against the target, and the U error profile."""
    fin = simulate.sample(smodel, params, start, protocol.replace(production_steps=n_steps))
    box = smodel.system.box
    g_fin = observables.rdf(fin.trajectory.positions, box, r_max=1.0, n_bins=200).g
    tae = float(observables.total_absolute_error(target.r, target.g, g_fin)) / units.angstrom
    err, r_at, prof = lj_error(spline, params, profile=True)
    print(f"{name} final: TAE {tae:.4f} A over {n_steps} steps, max |U - U_LJ| {err:.3f} kJ/mol "
          f"at r = {r_at:.4f} nm; U - U_LJ on a grid: {prof}", flush=True)  # fmt: skip
    return dict(final_tae_A=tae, final_error=err, r_at_max_error=r_at, error_profile=prof)


def _inversion(method, a, smodel, target, protocol, P, X):
    if method == "ibi":
        return train.ibi_trainer(smodel, target, protocol, R0=X[-1], settings=train.IBISettings(
            alpha=a.alpha, pressure=None if a.no_pressure else P,
            acceleration=a.acceleration, history=a.history, mixing_start=a.mixing_start,
            mixing_regularization=a.mixing_regularization,
            max_step_kT=a.max_step_kT, update=a.update, s_min=a.s_min))  # fmt: skip
    return train.imc_trainer(
        smodel,
        target,
        protocol,
        R0=X[-1],
        settings=train.IMCSettings(regularization=a.regularization, max_step_kT=a.max_step_kT,
                                   pressure=None if a.no_pressure else P,
                                   pressure_weight=a.pressure_weight),
    )


def _checkpoint_path(a, method):
    return None if not a.checkpoint else f"{a.checkpoint[: -len('.npz')]}_{method}.npz"


def _resumed(a, method, tr, pmf):
    """``(state, rows)``: the method's checkpoint (coefficients, end positions, rows of the
    updates done) when ``--checkpoint`` names one that exists, else a fresh start."""
    path = _checkpoint_path(a, method)
    if path is None or not os.path.exists(path):
        return tr.init(pmf), []
    d = np.load(path, allow_pickle=False)
    rows = json.loads(str(d["rows"]))
    c = jnp.asarray(d["coefficients"].reshape(np.shape(pmf["coefficients"])), jnp.float32)
    state = tr.init({**pmf, "coefficients": c})
    ps = float(rows[-1]["simulated_ps"]) if rows else 0.0
    state = state._replace(start=jnp.asarray(d["positions"]), update=len(rows), simulated_ps=ps)
    print(f"{method}: resumed from {path} after {len(rows)} updates", flush=True)
    return state, rows


def _save_checkpoint(a, method, state, rows):
    path = _checkpoint_path(a, method)
    if path is None or getattr(state, "memory", ()):  # Anderson's history is not stored
        return
    start = state.start
    pos = start.trajectory.positions[-1] if hasattr(start, "trajectory") else start
    tmp = path[: -len(".npz")] + ".tmp.npz"
    np.savez(tmp, coefficients=np.asarray(state.params["coefficients"]).reshape(-1),
             positions=np.asarray(pos), rows=json.dumps(rows))  # fmt: skip
    os.replace(tmp, path)


def _invert(method, a, smodel, target, protocol, P, X, pmf, spline, n_final):
    tr = _inversion(method, a, smodel, target, protocol, P.mean, X)
    state, rows = _resumed(a, method, tr, pmf)
    for k in range(len(rows), a.updates):
        state, m = tr.update(state)
        err = lj_error(spline, state.params)
        rows.append(dict(update=k, tae_A=m["tae"] / units.angstrom, pressure_bar=m["pressure"],
                         error_after=err, simulated_ps=m["simulated_ps"]))  # fmt: skip
        print(f"{method} {k}: {m['summary']}; after it max |U - U_LJ| {err:.3f} kJ/mol "
              f"({m['wall_s']:.0f} s)", flush=True)  # fmt: skip
        _save_checkpoint(a, method, state, rows)
    fin = final_check(method, smodel, state.params, state.start, protocol, target, spline, n_final)
    return dict(updates=rows, **fin)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-steps", type=int, default=100000)
    ap.add_argument("--target-every", type=int, default=20, help="steps between target frames")
    ap.add_argument("--target-cache", default=None, help=".npz to store/reuse the target frames")
    ap.add_argument("--steps", type=int, default=10000, help="production steps per update")
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument(
        "--final-steps",
        type=int,
        default=None,
        help="steps of the final check (default: half the target's)",
    )
    ap.add_argument("--methods", default="imc,ibi", help="imc, ibi, oracle (comma-separated)")
    ap.add_argument("--alpha", type=float, default=1.0, help="IBI damping")
    ap.add_argument("--no-pressure", action="store_true",
                    help="IBI without the pressure ramp, IMC without the pressure row")
    ap.add_argument("--pressure-weight", type=float, default=1.0,
                    help="IMC: weight of the pressure row (train.IMCSettings.pressure_weight)")
    ap.add_argument("--acceleration", default=None, choices=[None, "anderson"],
                    help="IBI: Anderson mixing of the last --history updates")  # fmt: skip
    ap.add_argument("--history", type=int, default=5, help="IBI: Anderson mixing's history")
    ap.add_argument("--mixing-start", type=int, default=0,
                    help="IBI: plain updates before Anderson mixing starts")  # fmt: skip
    ap.add_argument("--mixing-regularization", type=float, default=1e-6,
                    help="IBI: Anderson mixing's relative Tikhonov lambda")  # fmt: skip
    ap.add_argument("--max-step-kT", type=float, default=None,
                    help="IBI and IMC: largest change of U per update (kT)")  # fmt: skip
    ap.add_argument("--regularization", type=float, default=1e-3, help="IMC Tikhonov lambda")
    ap.add_argument("--update", default="boltzmann", choices=["boltzmann", "hnc"],
                    help="IBI: the update (train.IBISettings.update; hnc: iterative HNC)")
    ap.add_argument("--s-min", type=float, default=0.3,
                    help="IBI --update hnc: floor of the target's S(k)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0,
                    help="the samplings' seed (simulate.Protocol.seed): another draw")
    ap.add_argument("--out", default="henderson.json")
    ap.add_argument("--checkpoint", default=None,
                    help="IBI/IMC: .npz prefix; after every update the coefficients, end "
                    "positions and rows go to PREFIX_METHOD.npz, and a rerun resumes from it "
                    "(without Anderson mixing)")  # fmt: skip
    a = ap.parse_args()
    t0 = time.perf_counter()
    system, model, p_true, X = load_target(a)
    n_final = a.final_steps or len(X) * a.target_every // 2
    target, g1, g2, P = target_rdf(a, system, model, p_true, X)
    floor = float(observables.total_absolute_error(target.r, g1, g2)) / units.angstrom
    print(f"target: {len(X)} frames, P = {P.mean:.1f} +- {P.sem:.1f} bar; TAE between its "
          f"halves {floor:.4f} A ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    spline = potentials.SplinePair(n_basis=44, r_min=0.3, cutoff=CUTOFF)
    smodel = potentials.energy_model(spline, system=system)
    pmf = train.potential_of_mean_force(smodel, smodel.init_fn(jax.random.key(0), X[0]),
                                        target, T)  # fmt: skip
    print(f"PMF: max |U - U_LJ| over r >= sigma = {lj_error(spline, pmf):.3f} kJ/mol")
    protocol = simulate.Protocol(temperature=T, dt=DT, thermostat="langevin", friction=FRICTION,
                                 record_every=20, equilibration_steps=500,
                                 production_steps=a.steps, seed=a.seed)  # fmt: skip
    results = dict(args=vars(a), target_frames=len(X), target_pressure_bar=P.mean,
                   target_pressure_sem=P.sem, tae_floor_A=floor, final_steps=n_final,
                   pmf_error=lj_error(spline, pmf), methods={})  # fmt: skip
    for method in a.methods.split(","):
        if method == "oracle":  # the answer, sampled as long as the final checks
            p_lj = projected_lj(spline, smodel, X[0])
            results["methods"]["oracle"] = final_check(
                "oracle (projected LJ)", smodel, p_lj, X[-1], protocol, target, spline, n_final
            )
        else:
            results["methods"][method] = _invert(method, a, smodel, target, protocol, P, X, pmf,
                                                 spline, n_final)  # fmt: skip
        with open(a.out, "w") as f:  # after every method, so a cut-off run keeps what finished
            json.dump(results, f, indent=1)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
