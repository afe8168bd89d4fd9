"""How much sampling REM needs to pin LJ epsilon: Fisher information per ps at LJ state points.

For LJ parameters lambda = (ln sigma, ln epsilon) the relative-entropy estimate
at convergence has the covariance of a maximum-likelihood estimate,
``Cov = (1/I_ref + 1/I_CG) Sigma^-1 / beta^2`` with ``Sigma = Cov(dU/dlambda)``
per frame and ``I`` the number of independent frames. With ``U = dU/dln eps``
and ``W = dU/dln sigma`` correlated by ``rho`` this gives

    Var(ln eps) = (1/T_ref + 1/T_CG) / J,   J = beta^2 Var(U) (1 - rho^2) / (2 tau)

per ps of sampling ``T``, with ``tau`` the integrated autocorrelation time (ps)
of ``y = U - (Cov(U, W) / Var W) W``, the part of U that W does not explain
(estimated here by block averaging). The script runs argon-unit LJ (sigma
0.3405 nm, epsilon 0.996 kJ/mol, 39.948 amu, switched 0.8-0.85 nm, 256 atoms
from an fcc lattice) with jax-md BAOAB Langevin at each state point and prints
``J`` and the predicted sd(ln eps) of ``tests/train/test_relative_entropy.py``'s
budget (1600 ps of reference, 4 x 400 ps of CG samples).

    python scripts/rem_information.py 0.7883,0.8176 1.35,0.32,0.01,1
        # T*,rho*[,dt ps[,friction 1/ps[,fcc cells]]] per state point
        [--steps 60000] [--record-every 10]

Measured (2 CPU cores, 60000 steps each; reduced units of argon):

| T* | rho* | dt ps | gamma 1/ps | rho(U,W) | b^2 VarU (1-rho^2) | tau ps | J 1/ps | J/wall s |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| 0.788 | 0.818 | 0.01 | 5 | 0.954 | 24.7 | 1.04 | 11.8 | 165 |
| 0.788 | 0.818 | 0.01 | 20 | 0.955 | 22.9 | 1.87 | 6.1 | 95 |
| 0.788 | 0.818 | 0.01 | 1 | 0.951 | 24.5 | 0.47 | 26.3 | 328 |
| 0.788 | 0.818 | 0.01 | 0.3 | 0.951 | 25.5 | 0.56 | 22.6 | 309 |
| 0.788 | 0.818 | 0.015 | 1 | 0.952 | 25.6 | 0.48 | 26.5 | 532 |
| 0.788 | 0.818 | 0.02 | 1 | 0.947 | 26.1 | 0.49 | 26.6 | 682 |
| 1.35 | 0.32 | 0.01 | 1 | 0.312 | 134.5 | 2.8 | 23.8 | 375 |

A near-critical gas has a weak U-W correlation but fluctuations that decay
~6x slower, so per ps it informs epsilon no better than the liquid; the
friction (1/ps is best) and the step (information per ps does not depend on
it, so a longer step is cheaper) are what pay. 864 atoms instead of 256 gave
2.6x the information per ps at 6.7x the cost per step on this CPU (its neighbor
list changes shape), and vmapped replicas of 256 atoms gave no throughput gain.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import potentials, simulate, units

QUIET = simulate.Monitor(progress=False)  # runs without progress bars

SIGMA, EPS, MASS = 0.3405, 0.996, 39.948  # nm, kJ/mol, amu


def state_point(t_star, rho_star, dt, friction, cells, n_steps, record_every):
    T = t_star * EPS / units.kB
    t0 = time.time()
    R, L = simulate.fcc_lattice(cells, rho_star / SIGMA**3)
    n = R.shape[0]
    box = np.eye(3) * L
    species = np.zeros(n, np.int32)
    lj = potentials.LennardJones(n_species=1, sigma=SIGMA, epsilon=EPS, cutoff=0.85, r_onset=0.8)
    model = potentials.energy_model(lj, species=species, box=box)
    system = simulate.System.create(box=box, species=species, masses=np.full(n, MASS))
    R = jnp.asarray(R, jnp.float32)
    p = model.init_fn(jax.random.key(0), R)
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R)
    kT_hot = max(4 * T, 1.5 * 2.5 * 119.8) * units.kB  # melt the lattice
    hot = simulate.nvt_langevin(model.energy_fn(p), system, dt=min(dt, 0.004), kT=kT_hot,
                                friction=5.0)  # fmt: skip
    out = simulate.run(hot, hot.init_fn(jax.random.key(2), R, neighbor=nb), n_steps=2000,
                       record_every=100, neighbor_fn=nf, neighbor=nb, monitor=QUIET)  # fmt: skip
    sim = simulate.nvt_langevin(model.energy_fn(p), system, dt=dt, kT=units.kB * T,
                                friction=friction)  # fmt: skip
    state = sim.init_fn(jax.random.key(1), out.state.position, neighbor=out.neighbor)
    out = simulate.run(sim, state, n_steps=3000, record_every=100, neighbor_fn=nf,
                       neighbor=out.neighbor, monitor=QUIET)  # fmt: skip
    t_prod = time.time()
    out = simulate.run(sim, out.state, n_steps=n_steps, record_every=record_every,
                       neighbor_fn=nf, neighbor=out.neighbor, monitor=QUIET)  # fmt: skip
    prod_s = time.time() - t_prod

    def features(R):  # (dU/dln sigma, dU/dln eps) at the true parameters
        def e(lp):
            q = {"sigma": p["sigma"] * jnp.exp(lp[0]), "epsilon": p["epsilon"] * jnp.exp(lp[1])}
            return model.energy_fn(q)(R)

        return jax.grad(e)(jnp.zeros(2))

    X = jnp.asarray(out.trajectory.positions)
    F = np.asarray(jax.lax.map(features, X, batch_size=50), np.float64)
    W, U = F[:, 0], F[:, 1]
    beta = 1 / (units.kB * T)
    rho = float(np.corrcoef(U, W)[0, 1])
    y = U - np.cov(U, W)[0, 1] / W.var() * W
    blocks = []
    for b in (1, 2, 5, 10, 20, 50, 100, 200, 400):
        k = len(y) // b
        if k < 20:
            break
        blocks.append((b, float(b * y[: k * b].reshape(k, b).mean(1).var() / y.var())))
    g = max(x for _, x in blocks[-3:])  # statistical inefficiency (frames)
    tau = g * record_every * dt / 2
    J = beta**2 * y.var() / (2 * tau)
    sd_test = float(np.sqrt((1 / 1600 + 1 / 1600) / J))
    return dict(
        T_star=t_star, rho_star=rho_star, dt_ps=dt, friction=friction, n=n, T_K=round(T, 1),
        T_mean_K=round(float(out.trajectory.temperature.mean()), 1), rho_UW=round(rho, 4),
        info_per_frame=round(beta**2 * y.var(), 2), tau_ps=round(tau, 3),
        J_per_ps=round(J, 1), J_per_wall_s=round(J * dt * n_steps / prod_s, 1),
        steps_per_s=round(n_steps / prod_s), blocks=blocks,
        sd_ln_eps_test_budget=round(sd_test, 4), wall_s=round(time.time() - t0, 1),
    )  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", help="T*,rho*[,dt ps[,friction 1/ps[,fcc cells]]]")
    ap.add_argument("--steps", type=int, default=60000)
    ap.add_argument("--record-every", type=int, default=10)
    args = ap.parse_args()
    for spec in args.points:
        v = [float(x) for x in spec.split(",")]
        v += [0.01, 1.0, 4][len(v) - 2 :]
        res = state_point(v[0], v[1], v[2], v[3], int(v[4]), args.steps, args.record_every)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
