"""The contract every cgjax potential passes (public, like e3nn's ``assert_equivariant``).

:func:`check_potential` runs all checks on one potential and returns the
measured errors; each check is also a public ``assert_*`` function:

- forces equal ``-grad E`` by a fourth-order central finite difference
  (float64, relative error below ``1e-6``), and parameter gradients equal
  finite differences along a random direction;
- invariance under rotation (box rotated too), translation, and permutation
  of same-species particles;
- energy and force continuous at the cutoff, and exactly flat beyond it;
- ``vmap`` over frames equals a loop;
- extensivity: a 2x2x2 replica of a periodic box has 8x the energy;
- jax-md neighbor lists (sparse, ordered sparse, dense) equal all pairs.

All checks need float64: call ``jax.config.update("jax_enable_x64", True)``
first (the test suite's ``conftest.py`` does).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cgjax._space import box_matrix
from cgjax.potentials._base import Term
from cgjax.potentials._energy import EnergyModel, energy_model

__all__ = [
    "assert_batch_consistent",
    "assert_extensive",
    "assert_forces_match_finite_differences",
    "assert_invariant",
    "assert_neighbor_lists_agree",
    "assert_param_gradients",
    "assert_smooth_at_cutoff",
    "check_potential",
    "random_rotation",
    "replicate_system",
    "to_float64",
]


def _require_x64() -> None:
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "cgjax.testing needs float64: call jax.config.update('jax_enable_x64', True) first"
        )


def to_float64(tree: Any) -> Any:
    """Casts every floating leaf of a pytree to float64."""
    return jax.tree.map(
        lambda x: (
            jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x
        ),
        tree,
    )


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix ``[3, 3]``."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def replicate_system(R: Any, species: Any, box: Any, reps=(2, 2, 2)):
    """Tiles a periodic system ``reps`` times along its box vectors.

    Args:
      R: ``[N, 3]`` positions (nm).
      species: ``[N]`` species.
      box: the box (nm), see :func:`cgjax.box_matrix`.
      reps: copies along ``a, b, c``.

    Returns:
      ``(R_big [n N, 3], species_big [n N], box_big [3, 3], n)`` with images
      stacked copy-major (copy ``k`` holds particles ``k N .. (k + 1) N - 1``).
    """
    b = box_matrix(box)
    shifts = (
        np.array(
            [[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])],
            dtype=np.float64,
        )
        @ b.T
    )
    R = np.asarray(R, np.float64)
    R_big = (shifts[:, None, :] + R[None]).reshape(-1, 3)
    species_big = np.tile(np.asarray(species), len(shifts))
    return R_big, species_big, b * np.asarray(reps)[None, :], len(shifts)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def assert_forces_match_finite_differences(energy, R, *, h: float = 1e-5, rtol: float = 1e-6):
    """``-grad E`` equals a 4th-order central difference of ``E`` over every coordinate.

    Args:
      energy: ``E(R) -> scalar`` (kJ/mol), float64.
      R: ``[N, 3]`` positions (nm), float64.
      h: finite-difference step (nm).
      rtol: bound on ``|F_ad - F_fd| / |F_fd|`` (norms over all coordinates).

    Returns:
      the relative error.
    """
    R = jnp.asarray(R, jnp.float64)
    n = R.size
    F = -jax.jit(jax.grad(energy))(R)
    steps = jnp.eye(n, dtype=R.dtype).reshape(n, *R.shape) * h
    e_batch = jax.jit(jax.vmap(energy))
    stencil = jnp.concatenate([R + 2 * steps, R + steps, R - steps, R - 2 * steps])
    e = e_batch(stencil).reshape(4, n)
    F_fd = -((-e[0] + 8 * e[1] - 8 * e[2] + e[3]) / (12 * h)).reshape(R.shape)
    err = _rel(F, F_fd)
    assert np.all(np.isfinite(np.asarray(F))), "forces are not finite"
    assert err < rtol, f"forces differ from finite differences: relative error {err:.3e} > {rtol}"
    return err


def assert_param_gradients(
    energy_of_params, params, *, seed: int = 0, h: float = 1e-5, rtol: float = 1e-6
):
    """``dE/dparams`` along a random direction equals a central finite difference.

    Args:
      energy_of_params: ``params -> E`` (kJ/mol), float64.
      params: the parameter pytree (float64).

    Returns:
      the relative error of the directional derivative.
    """
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    direction = treedef.unflatten(
        [jnp.asarray(rng.normal(size=np.shape(x))) * (1.0 + jnp.abs(x)) for x in leaves]
    )
    shifted = lambda t: jax.tree.map(lambda p, d: p + t * d, params, direction)
    f = jax.jit(lambda t: energy_of_params(shifted(t)))
    _, d_ad = jax.jvp(f, (0.0,), (1.0,))
    d_fd = (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)
    grads = jax.grad(energy_of_params)(params)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads)), (
        "parameter gradients are not finite"
    )
    err = abs(float(d_ad) - float(d_fd)) / max(abs(float(d_fd)), 1e-300)
    assert err < rtol, (
        f"parameter gradient differs from finite differences: {float(d_ad)} vs {float(d_fd)} "
        f"(relative {err:.3e} > {rtol})"
    )
    return err


def assert_invariant(model: EnergyModel, params, R, *, seed: int = 0, rtol: float = 1e-9):
    """Energy is unchanged by rotation, translation and same-species permutation.

    For a periodic box the box is rotated with the positions and passed per call.

    Returns:
      dict of relative energy changes per transformation.
    """
    rng = np.random.default_rng(seed)
    R = np.asarray(R, np.float64)
    energy = jax.jit(model.energy_fn(params))
    e0 = float(energy(jnp.asarray(R)))
    scale = max(abs(e0), 1e-12)
    out = {}

    # translation (wrapped back into the box where there is one)
    t = rng.normal(size=3)
    Rt = jnp.asarray(R + t)
    if model.box is not None:
        Rt = model.shift_fn(jnp.asarray(R), jnp.broadcast_to(jnp.asarray(t), R.shape))
    out["translation"] = abs(float(energy(Rt)) - e0) / scale

    # rotation
    Q = random_rotation(rng)
    if model.box is None:
        out["rotation"] = abs(float(energy(jnp.asarray(R @ Q.T))) - e0) / scale
    else:
        box_rot = jnp.asarray(Q @ box_matrix(model.box))
        e_rot = float(energy(jnp.asarray(R @ Q.T), box=box_rot))
        out["rotation"] = abs(e_rot - e0) / scale

    # permutation within species
    species = np.asarray(model.species)
    perm = np.arange(len(species))
    for s in np.unique(species):
        idx = np.flatnonzero(species == s)
        perm[idx] = rng.permutation(idx)
    permuted = energy_model(model.potential.permuted(perm), species=species[perm], box=model.box)
    out["permutation"] = abs(float(permuted.energy_fn(params)(jnp.asarray(R[perm]))) - e0) / scale

    for k, v in out.items():
        assert v < rtol, f"energy not invariant under {k}: relative change {v:.3e} > {rtol}"
    return out


def assert_smooth_at_cutoff(
    potential: Term, params, *, species_pairs=((0, 0),), delta: float = 1e-5, tol: float = 1e-6
):
    """Energy and force of two isolated particles are continuous at the cutoff.

    With ``r_c`` the potential's cutoff, checks that ``E(r_c - d) - E(r_c + d)``
    and ``F(r_c - d)`` vanish relative to the energy and force scale of the
    pair over ``[0.5 r_c, r_c]``, and that the energy is flat beyond ``r_c``.

    Args:
      delta: distance ``d`` from the cutoff, as a fraction of ``r_c``.
      tol: bound on the jumps relative to the scales.

    Returns:
      dict with the relative jumps of energy and force.
    """
    rc = potential.max_cutoff()
    if rc is None:
        return {}
    out = {}
    for a, b in species_pairs:
        model = energy_model(potential, species=np.array([a, b]), box=None)
        energy = model.energy_fn(params)

        def e_and_f(r, energy=energy):
            R = jnp.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]) * r
            e, g = jax.value_and_grad(energy)(R)
            return e, -g[1, 0]

        e_and_f = jax.jit(jax.vmap(e_and_f))
        grid = jnp.linspace(0.5 * rc, rc, 201)
        e_grid, f_grid = e_and_f(grid)
        probe = jnp.array([rc * (1 - delta), rc * (1 + delta), 1.5 * rc, 2.0 * rc])
        e_p, f_p = e_and_f(probe)
        e_far = float(e_p[3])
        e_scale = max(float(jnp.max(jnp.abs(e_grid - e_far))), 1e-12)
        f_scale = max(float(jnp.max(jnp.abs(f_grid))), 1e-12)
        jump_e = abs(float(e_p[0] - e_p[1])) / e_scale
        jump_f = abs(float(f_p[0] - f_p[1])) / f_scale
        flat = max(abs(float(e_p[1]) - e_far), abs(float(e_p[2]) - e_far)) / e_scale
        out[(a, b)] = {"energy_jump": jump_e, "force_jump": jump_f, "beyond_cutoff": flat}
        assert jump_e < tol, f"energy jumps at the cutoff ({a},{b}): {jump_e:.3e} of scale"
        assert jump_f < tol, f"force jumps at the cutoff ({a},{b}): {jump_f:.3e} of scale"
        assert flat < 1e-12, f"energy changes beyond the cutoff ({a},{b}): {flat:.3e} of scale"
        assert abs(float(f_p[1])) <= 1e-12 * f_scale, "force beyond the cutoff is not zero"
    return out


def assert_batch_consistent(model: EnergyModel, params, R_batch, *, rtol: float = 1e-10):
    """``vmap`` over frames gives the energies and forces of a loop over frames.

    Returns:
      the largest relative difference.
    """
    energy = model.energy_fn(params)
    vg = jax.jit(jax.vmap(jax.value_and_grad(energy)))
    e_v, g_v = vg(jnp.asarray(R_batch))
    one = jax.jit(jax.value_and_grad(energy))
    err = 0.0
    for t in range(len(R_batch)):  # the loop is the reference being checked
        e, g = one(jnp.asarray(R_batch[t]))
        err = max(err, _rel(e_v[t], e), _rel(g_v[t], g))
    assert err < rtol, f"vmap over frames differs from a loop: {err:.3e} > {rtol}"
    return err


def assert_extensive(potential: Term, params, R, species, box, *, rtol: float = 1e-9):
    """A 2x2x2 replica of a periodic box has 8x the energy.

    Returns:
      the relative deviation of ``E_big / 8`` from ``E``.
    """
    e_small = float(
        energy_model(potential, species=species, box=box).energy_fn(params)(
            jnp.asarray(R, jnp.float64)
        )
    )
    R_big, species_big, box_big, n = replicate_system(R, species, box)
    big = energy_model(potential.replicated(n, len(species)), species=species_big, box=box_big)
    # the big box gets a neighbor list: all pairs of 8N particles are needed nowhere else
    e_big = float(big.energy_fn(params)(jnp.asarray(R_big), neighbor=_neighbors(big, R_big)))
    err = abs(e_big / n - e_small) / max(abs(e_small), 1e-12)
    assert err < rtol, f"energy is not extensive: E(2x2x2)/8 = {e_big / n} vs E = {e_small}"
    return err


def _neighbors(model: EnergyModel, R, format: str = "sparse"):
    if model.cutoff is None:
        return None
    return model.neighbor_fn(skin=0.05 * model.cutoff, format=format).allocate(jnp.asarray(R))


def assert_neighbor_lists_agree(model: EnergyModel, params, R, *, rtol: float = 1e-10):
    """Energies and forces with jax-md neighbor lists (every format) equal all pairs.

    Returns:
      the largest relative difference.
    """
    energy = jax.jit(jax.value_and_grad(model.energy_fn(params)))
    R = jnp.asarray(R)
    e_ref, g_ref = energy(R)
    err = 0.0
    for fmt in ("sparse", "ordered_sparse", "dense"):
        nbrs = _neighbors(model, R, fmt)
        e, g = energy(R, neighbor=nbrs)
        err = max(err, _rel(e, e_ref), _rel(g, g_ref))
        assert err < rtol, f"{fmt} neighbor list differs from all pairs: {err:.3e}"
    return err


def check_potential(
    potential: Term,
    *,
    positions,
    species,
    box,
    params=None,
    seed: int = 0,
    fd_rtol: float = 1e-6,
    fd_step: float = 1e-5,
    n_frames: int = 3,
    species_pairs=None,
):
    """Runs the whole contract on one potential and returns the measured errors.

    Args:
      potential: the term (or sum of terms) under test.
      positions: ``[N, 3]`` positions (nm) in a periodic ``box`` with every
        perpendicular width at least twice the cutoff.
      species: ``[N]`` int species.
      box: periodic box (nm); required for the extensivity check.
      params: parameters to test at (default: ``init`` with ``seed``).
      fd_rtol, fd_step: finite-difference tolerance and step (nm).
      n_frames: frames (positions plus noise) for the batch check.
      species_pairs: pairs for the cutoff check (default: (0,0) and (0,S-1)).

    Returns:
      dict of measured errors, one entry per check.
    """
    _require_x64()
    R = jnp.asarray(positions, jnp.float64)
    model = energy_model(potential, species=species, box=box)
    if params is None:
        params = model.init_fn(jax.random.key(seed), R)
    params = to_float64(params)
    energy = model.energy_fn(params)
    report = {}
    report["forces_fd"] = assert_forces_match_finite_differences(energy, R, h=fd_step, rtol=fd_rtol)
    report["param_grad_fd"] = (
        assert_param_gradients(lambda p: model.energy_fn(p)(R), params, h=fd_step, rtol=fd_rtol)
        if jax.tree.leaves(params)
        else 0.0
    )
    report["invariance"] = assert_invariant(model, params, R, seed=seed)
    n_s = potential.species_count() or 1
    pairs = species_pairs or sorted({(0, 0), (0, n_s - 1)})
    report["cutoff"] = assert_smooth_at_cutoff(potential, params, species_pairs=pairs)
    rng = np.random.default_rng(seed)
    frames = np.asarray(R)[None] + 0.01 * rng.normal(size=(n_frames, *R.shape))
    report["batch"] = assert_batch_consistent(model, params, frames)
    report["extensive"] = assert_extensive(potential, params, R, species, box)
    if model.cutoff is not None:
        report["neighbor_lists"] = assert_neighbor_lists_agree(model, params, R)
    # float32, the default for simulation, stays float32 (no silent promotion)
    # and close to float64
    e64 = float(energy(R))
    params32 = jax.tree.map(
        lambda x: jnp.asarray(x, jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x,
        params,
    )
    energy32 = model.energy_fn(params32)
    R32 = jnp.asarray(R, jnp.float32)
    e32_arr, g32 = jax.value_and_grad(energy32)(R32)
    assert e32_arr.dtype == jnp.float32 and g32.dtype == jnp.float32, (
        f"float32 inputs gave a {e32_arr.dtype} energy and {g32.dtype} forces: a constant or "
        "parameter promotes the computation (no silent casts)"
    )
    e32 = float(e32_arr)
    report["float32"] = abs(e32 - e64) / max(abs(e64), 1e-12)
    assert report["float32"] < 1e-3, f"float32 energy {e32} far from float64 {e64}"
    return report
