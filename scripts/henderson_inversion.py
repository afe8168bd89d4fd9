"""Henderson's theorem at acceptance length: IBI and IMC recover an LJ fluid's pair potential.

The target is 256 LJ atoms (argon: sigma 0.3405 nm, epsilon 0.996 kJ/mol,
94.4 K, 20.71 nm^-3; cutoff 0.85 nm switched from 0.8 nm) sampled with BAOAB
Langevin (20 fs, 1/ps), the integrator the inversions sample with. IBI (with
the pressure ramp towards the target's virial pressure) and IMC start from
the potential of mean force. Printed per update: the RDF TAE (A) against the
target, the pressure (bar) and the largest |U - U_LJ| over sigma <= r < r_c
(kJ/mol). The statistical floor of the TAE is the TAE between the two halves
of the target run (each half as long as ... see the output).

    PYTHONPATH=. python scripts/henderson_inversion.py --target-steps 100000 \
        --steps 10000 --updates 10 --out henderson.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import observables, potentials, simulate, train, units
from cgjax.potentials._cutoff import smooth_switch

SIGMA, EPSILON, T = 0.3405, 0.996, 94.4
CUTOFF, ONSET, DT, FRICTION = 0.85, 0.8, 0.02, 1.0


def target_run(n_steps: int):
    quiet = simulate.Monitor(progress=False)
    R, L = simulate.fcc_lattice(4, 20.71)
    n = R.shape[0]
    system = simulate.System.create(box=np.eye(3) * L, species=np.zeros(n, np.int32),
                                    masses=np.full(n, 39.948))  # fmt: skip
    lj = potentials.LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, r_onset=ONSET)
    model = potentials.energy_model(lj, system=system)
    R = jnp.asarray(R, jnp.float32)
    p_true = model.init_fn(jax.random.key(0), R)
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
    out = simulate.run(sim, out.state, n_steps=n_steps, record_every=20, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=simulate.Monitor(progress=True))  # fmt: skip
    X = np.asarray(out.trajectory.positions)
    return system, model, p_true, X


def lj_error(spline, params):
    r = jnp.linspace(SIGMA, CUTOFF, 400)
    U = spline.basis(r) @ jnp.reshape(params["coefficients"], -1)
    U_lj = potentials.lennard_jones(r, SIGMA, EPSILON) * smooth_switch(r, ONSET, CUTOFF)
    return float(jnp.max(jnp.abs(U - U_lj)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-steps", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=10000, help="production steps per update")
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--methods", default="imc,ibi")
    ap.add_argument("--out", default="henderson.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    system, model, p_true, X = target_run(a.target_steps)
    target = observables.rdf(X, system.box, r_max=1.0, n_bins=200)
    h = len(X) // 2
    g1 = observables.rdf(X[:h], system.box, r_max=1.0, n_bins=200).g
    g2 = observables.rdf(X[h:], system.box, r_max=1.0, n_bins=200).g
    floor = float(observables.total_absolute_error(target.r, g1, g2)) / units.angstrom
    P = observables.pressure(model, p_true, X, kT=units.kB * T)
    print(f"target: {len(X)} frames, P = {P.mean:.1f} +- {P.sem:.1f} bar; TAE between its "
          f"halves {floor:.4f} A ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    spline = potentials.SplinePair(n_basis=44, r_min=0.3, cutoff=CUTOFF)
    smodel = potentials.energy_model(spline, system=system)
    pmf = train.potential_of_mean_force(smodel, smodel.init_fn(jax.random.key(0), X[0]),
                                        target, T)  # fmt: skip
    print(f"PMF: max |U - U_LJ| over r >= sigma = {lj_error(spline, pmf):.3f} kJ/mol")
    protocol = simulate.Protocol(temperature=T, dt=DT, thermostat="langevin", friction=FRICTION,
                                 record_every=20, equilibration_steps=500,
                                 production_steps=a.steps)  # fmt: skip
    results = dict(target_frames=len(X), target_pressure_bar=P.mean, target_pressure_sem=P.sem,
                   tae_floor_A=floor, pmf_error=lj_error(spline, pmf), methods={})  # fmt: skip
    for method in a.methods.split(","):
        if method == "ibi":
            tr = train.ibi_trainer(smodel, target, protocol, R0=X[-1],
                                   settings=train.IBISettings(pressure=P.mean))  # fmt: skip
        else:
            tr = train.imc_trainer(smodel, target, protocol, R0=X[-1])
        state, rows = tr.init(pmf), []
        for k in range(a.updates):
            state, m = tr.update(state)
            err = lj_error(spline, state.params)
            rows.append(dict(update=k, tae_A=m["tae"] / units.angstrom, pressure_bar=m["pressure"],
                             error_after=err, simulated_ps=m["simulated_ps"]))  # fmt: skip
            print(f"{method} {k}: {m['summary']}; after it max |U - U_LJ| {err:.3f} kJ/mol "
                  f"({m['wall_s']:.0f} s)", flush=True)  # fmt: skip
        # the TAE of the final parameters, on a sampling as long as the target's half
        fin = simulate.sample(smodel, state.params, state.start,
                              protocol.replace(production_steps=a.target_steps // 2))  # fmt: skip
        g_fin = observables.rdf(fin.trajectory.positions, system.box, r_max=1.0, n_bins=200).g
        tae = float(observables.total_absolute_error(target.r, target.g, g_fin)) / units.angstrom
        print(f"{method} final: TAE {tae:.4f} A, max |U - U_LJ| {rows[-1]['error_after']:.3f} "
              "kJ/mol", flush=True)  # fmt: skip
        results["methods"][method] = dict(updates=rows, final_tae_A=tae,
                                          final_error=rows[-1]["error_after"])  # fmt: skip
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
