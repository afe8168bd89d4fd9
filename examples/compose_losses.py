# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Composing losses: force matching + RDF + MSD in one gradient
#
# Losses in `cgjax.losses` are small objects that add and scale. Force matching
# looks at frames; the RDF and MSD losses look at a trajectory simulated with the
# *same* energy function, differentiated through diffrax. A sum of trajectory
# losses built on one `TrajectorySpec` runs **one** simulation per evaluation.
#
# The system is Rahman's liquid argon (the shipped OpenMM reference
# `argon_864`, 94.4 K); the CG model is a Lennard-Jones pair potential whose
# σ and ε start 3 % and 10 % off. Units: nm, ps, kJ/mol.
#
# Set `CGJAX_PRESET=smoke` for a seconds-long run on 108 atoms (the test suite
# does); the default `quick` simulates 256 atoms for 4 ps.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

from cgjax import datasets, losses, potentials, simulate, units

jax.config.update("jax_enable_x64", True)  # gradients checked in float64 below
PRESET = os.environ.get("CGJAX_PRESET", "quick")
SMOKE = PRESET == "smoke"
print("preset:", PRESET)

# %% [markdown]
# ## Reference data: frames with forces, and the AA RDF and MSD

# %%
frames = datasets.load("argon_864", wrapped=True)
obs = datasets.load_observables("argon_864")
T = frames.temperature  # K
kT = units.kT(T)
print(frames)

# %% [markdown]
# ## The model: one potential, two systems
#
# The force-matching term sees the 864-atom reference frames; the trajectory is
# simulated on a box of `n_cells`³ FCC cells at the same density (108 atoms in
# the smoke preset, 256 in quick), melted by the run itself. Both energy models
# share one parameter tree.

# %%
pot = potentials.LennardJones(
    sigma=0.33, epsilon=0.90, cutoff=0.8, r_onset=0.7, param_dtype=np.float64
)  # truth: sigma 0.3405 nm, epsilon 0.996 kJ/mol
fm_model = potentials.energy_model(pot, species=frames.species, box=frames.box)

n_cells = 3 if SMOKE else 4
number_density = 864 / np.linalg.det(frames.box)  # atoms / nm^3
R0, L = simulate.fcc_lattice(n_cells, number_density)
R0 = np.asarray(R0, np.float64)
n = len(R0)
species = np.zeros(n, np.int32)
system = simulate.System.create(box=L, species=species, masses=frames.masses[0])
md_model = potentials.energy_model(pot, system=system)  # bound to its system: it can run
params = md_model.init_fn(jax.random.key(0), R0)
print(n, "atoms in the simulated box;", {k: float(v[0, 0]) for k, v in params.items()})

# %% [markdown]
# ## The trajectory spec: NVE through diffrax, exact discrete gradients
#
# A `simulate.Protocol` says what to run (time step, length, thermostat, skin);
# the adjoint object how to differentiate it: `simulate.Checkpoint` is diffrax's
# `RecursiveCheckpointAdjoint`; `Backsolve` (memory flat in length) and
# `Truncated` are the alternatives.

# %%
dt, record_every = 0.004, 25  # ps; frames every 0.1 ps (the MSD target is every 0.2 ps)
n_steps = 200 if SMOKE else 1000
V0 = simulate.maxwell_boltzmann(jax.random.key(1), system, kT, dtype=np.float64)
protocol = simulate.Protocol(
    temperature=kT / units.kB, dt=dt, production_steps=n_steps, record_every=record_every,
    thermostat="nve",
    # all pairs for 108 atoms; for 256 a neighbor list, rebuilt between 0.1 ps segments
    skin=None if SMOKE else 0.2,
)  # fmt: skip
spec = simulate.TrajectorySpec(md_model, R0, V0, protocol,
                               adjoint=simulate.Checkpoint(segment_steps=25))  # fmt: skip

# %% [markdown]
# ## Three losses, one sum

# %%
r_max = 0.85 if SMOKE else 1.1  # nm, below half the box
k = int(round(r_max / obs["rdf"]["bin_width_nm"]))
target_r, target_g = np.asarray(obs["rdf"]["r_nm"])[:k], np.asarray(obs["rdf"]["g"])[:k]
t_msd = np.asarray(obs["msd"]["t_ps"])
lags = t_msd[(t_msd > 0) & (t_msd <= spec.frame_interval * (spec.n_frames - 1) + 1e-9)]
target_msd = np.interp(lags, t_msd, obs["msd"]["msd_nm2"])

fm = losses.force_matching_loss(fm_model)
rdf = losses.rdf_loss(target_r, target_g, simulate=spec, sigma=0.01)
msd = losses.msd_loss(lags, target_msd, simulate=spec)
batch = {"positions": frames.positions[:2].astype(np.float64),
         "forces": frames.forces[:2].astype(np.float64)}  # fmt: skip

parts = {name: float(term(params, batch)) for name, term in
         (("force matching", fm), ("RDF", rdf), ("MSD", msd))}  # fmt: skip
print(parts)
# Weights make each part 1 at the start, so none dominates the gradient.
loss = (1 / parts["force matching"]) * fm + (1 / parts["RDF"]) * rdf + (1 / parts["MSD"]) * msd

# %%
value, grads = jax.value_and_grad(loss)(params, batch)
print(f"loss = {float(value):.4f} (3 at the start, by construction)")
print("dL/dsigma =", float(grads["sigma"][0, 0]), " dL/depsilon =", float(grads["epsilon"][0, 0]))

# %% [markdown]
# The RDF and MSD parts shared one simulation. A central finite difference on
# ε checks the whole chain: forces → diffrax solve → smeared RDF and MSD.

# %%
h = 1e-5
plus = jax.tree.map(lambda x: x, params)
minus = jax.tree.map(lambda x: x, params)
plus["epsilon"] = params["epsilon"] + h
minus["epsilon"] = params["epsilon"] - h
fd = (float(loss(plus, batch)) - float(loss(minus, batch))) / (2 * h)
print(f"dL/depsilon: autodiff {float(grads['epsilon'][0, 0]):.6e}, finite difference {fd:.6e}")
assert abs(fd - float(grads["epsilon"][0, 0])) <= 1e-4 * abs(fd) + 1e-8

# %% [markdown]
# ## What the trajectory losses see

# %%
traj = spec(params)
from cgjax import observables  # noqa: E402

g = observables.rdf_smooth(traj.positions, L, r_max=r_max, n_bins=k, sigma=0.01)
m = np.asarray(observables.msd(traj.positions).msd)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot(target_r / units.angstrom, target_g, "k", lw=2, label="AA (OpenMM)")
ax[0].plot(np.asarray(g.r) / units.angstrom, np.asarray(g.g), label="CG, smeared, start")
ax[0].set(xlabel="r (Å)", ylabel="g(r)")
ax[0].legend()
t = np.arange(len(m)) * spec.frame_interval
ax[1].plot(t_msd, obs["msd"]["msd_nm2"], "k", lw=2, label="AA")
ax[1].plot(t, np.asarray(m), "o-", label="CG, start")
ax[1].set(xlabel="t (ps)", ylabel="MSD (nm²)", xlim=(0, t[-1] * 1.5), ylim=(0, None))
ax[1].legend()
plt.show()

# %% [markdown]
# ## A few gradient steps on the sum

# %%
import optax  # noqa: E402

opt = optax.adam(3e-3)
state = opt.init(params)
history = [float(value)]
p = params
for _ in range(1 if SMOKE else 5):
    v, gr = jax.value_and_grad(loss)(p, batch)
    updates, state = opt.update(gr, state, p)
    p = optax.apply_updates(p, updates)
    history.append(float(loss(p, batch)))
print("loss:", np.round(history, 4))
print(f"sigma {float(p['sigma'][0, 0]):.4f} nm (truth 0.3405), "
      f"epsilon {float(p['epsilon'][0, 0]):.4f} kJ/mol (truth 0.996)")  # fmt: skip
plt.plot(history, "o-")
plt.xlabel("Adam step")
plt.ylabel("loss")
plt.show()
