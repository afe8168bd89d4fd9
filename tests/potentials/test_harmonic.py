import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import potentials, testing, units

L = 1.3  # nm, cubic box
T_K = 300.0
KT = units.kB * T_K  # kJ/mol


def triatomic_system(seed=0):
    """9 bent A-B-A molecules in a 1.3 nm box: ``(R [27, 3] nm, species [27])``.

    Molecules are whole (unwrapped): the first three stick out of the cell
    through x = 0, so wrapping them into the box puts bonds across the boundary.
    """
    rng = np.random.default_rng(seed)
    g = (np.arange(3) + 0.5) * L / 3
    centres = np.stack(np.meshgrid(g, g, [0.0], indexing="ij"), -1).reshape(-1, 3)
    centres[:, 2] = rng.uniform(0, L, 9)
    centres[:3, 0] -= 0.2
    mols = []
    for c in centres:
        th = np.deg2rad(110 + 8 * rng.normal())
        r1, r2 = 0.15 + 0.01 * rng.normal(size=2)
        local = np.array([[r1, 0, 0], [0, 0, 0], [r2 * np.cos(th), r2 * np.sin(th), 0]])
        mols.append(c + (local - local.mean(0)) @ testing.random_rotation(rng).T)
    return np.concatenate(mols), np.tile([0, 1, 0], 9).astype(np.int32)


ONE_BONDS = ((0, 1), (1, 2))
ONE_ANGLES = ((0, 1, 2),)


def molecule_terms():
    """Bond and angle priors of one molecule, replicated to the 9 of the system."""
    bonds = potentials.HarmonicBonds(bonds=ONE_BONDS, k=[3.0e4, 2.5e4], r0=[0.15, 0.16])
    angles = potentials.HarmonicAngles(angles=ONE_ANGLES, k=300.0, theta0=1.9)
    return bonds.replicated(9, 3), angles.replicated(9, 3)


@pytest.mark.parametrize("which", [0, 1], ids=["bonds", "angles"])
def test_contract(which):
    R, species = triatomic_system()
    term = molecule_terms()[which]
    report = testing.check_potential(term, positions=R, species=species, box=np.full(3, L))
    assert report["forces_fd"] < 1e-6


def test_minimum_image_across_the_boundary():
    R, species = triatomic_system()
    wrapped = np.mod(R, L)
    assert np.any(np.abs(wrapped - R) > 0.5 * L)  # some bonds now cross the boundary
    for term in molecule_terms():
        model = potentials.energy_model(term, species=species, box=L)
        params = testing.to_float64(model.init_fn(jax.random.key(0), jnp.asarray(R)))
        e = jax.jit(model.energy_fn(params))
        np.testing.assert_allclose(e(jnp.asarray(wrapped)), e(jnp.asarray(R)), rtol=1e-12)


def test_single_bond_closed_form():
    k, r0 = 2.0e4, 0.14
    term = potentials.HarmonicBonds(bonds=((0, 1),), k=k, r0=r0)
    model = potentials.energy_model(term, species=np.zeros(2, np.int32), box=L)
    params = model.init_fn(jax.random.key(0), jnp.zeros((2, 3)))
    assert params["k"].shape == params["r0"].shape == (1,)
    params = {"k": jnp.array([k]), "r0": jnp.array([r0])}  # float64, not float32 inits
    e_and_g = jax.jit(jax.vmap(jax.value_and_grad(model.energy_fn(params))))
    r = np.array([0.10, 0.14, 0.17, 0.2])
    u = np.array([1.0, -0.6, 0.8]) / np.sqrt(2.0)
    # particle 1 sits just inside x = 0, particle 0 across the boundary from it
    R1 = np.array([0.01, 0.5, 0.6])
    R = np.stack([np.stack([np.mod(R1 + ri * u, L), R1]) for ri in r])
    e, g = e_and_g(jnp.asarray(R))
    np.testing.assert_allclose(e, 0.5 * k * (r - r0) ** 2, rtol=1e-12, atol=1e-12)
    # force on particle 0 is -k (r - r0) along the unit vector from 1 to 0
    np.testing.assert_allclose(-g[:, 0], -k * (r - r0)[:, None] * u, rtol=1e-10, atol=1e-8)


def test_angle_closed_form_and_collinear_safety():
    k, th0 = 250.0, np.deg2rad(100.0)
    term = potentials.HarmonicAngles(angles=((0, 1, 2),), k=k, theta0=th0)
    model = potentials.energy_model(term, species=np.zeros(3, np.int32), box=None)
    params = {"k": jnp.array([k]), "theta0": jnp.array([th0])}
    e_and_g = jax.jit(jax.vmap(jax.value_and_grad(model.energy_fn(params))))
    theta = np.array([np.pi / 2, 2.0, np.pi - 1e-3, np.pi, 0.0, 1e-3])
    arm_i, arm_k = 0.15, 0.2
    R = np.stack(
        [[[arm_i, 0, 0], [0, 0, 0], [arm_k * np.cos(t), arm_k * np.sin(t), 0]] for t in theta]
    )
    R = R + np.array([0.3, -0.2, 0.1])
    e, g = e_and_g(jnp.asarray(R))
    np.testing.assert_allclose(e, 0.5 * k * (theta - th0) ** 2, rtol=1e-10)
    assert np.all(np.isfinite(g)), "angle gradient is not finite at 0 or pi"
    # away from the exact end points dE/dR_k = k (theta - theta0) dtheta/dR_k, where
    # dtheta/dR_k is perpendicular to the arm, towards larger theta, of size 1 / arm_k
    for n in (0, 1, 2, 5):
        t = theta[n]
        perp = np.array([-np.sin(t), np.cos(t), 0.0])
        np.testing.assert_allclose(g[n, 2], k * (t - th0) / arm_k * perp, rtol=1e-8, atol=1e-9)


def test_replicated_and_permuted_topology():
    R, species = triatomic_system()
    bonds, angles = molecule_terms()
    assert bonds.n_copies == 9 and bonds.bonds[2:4] == ((3, 4), (4, 5))
    assert angles.angles[-1] == (24, 25, 26)
    # the 9 copies share one molecule's parameters
    model = potentials.energy_model(bonds + angles, species=species, box=L)
    params = testing.to_float64(model.init_fn(jax.random.key(0), jnp.asarray(R)))
    assert params["bonds"]["k"].shape == (2,) and params["angles"]["theta0"].shape == (1,)
    # the same energy as an explicit per-bond list with per-bond parameters
    explicit = potentials.HarmonicBonds(
        bonds=bonds.bonds, k=np.tile([3.0e4, 2.5e4], 9), r0=np.tile([0.15, 0.16], 9)
    )
    e_explicit = potentials.energy_model(explicit, species=species, box=L)
    p_explicit = testing.to_float64(e_explicit.init_fn(jax.random.key(0), jnp.asarray(R)))
    e0 = potentials.energy_model(bonds, species=species, box=L).energy_fn(params["bonds"])
    np.testing.assert_allclose(
        e_explicit.energy_fn(p_explicit)(jnp.asarray(R)), e0(jnp.asarray(R)), rtol=1e-12
    )
    # permuted(perm) relabels so that R[perm] has the same energy
    perm = np.random.default_rng(1).permutation(len(R))
    moved = bonds.permuted(perm)
    assert moved.n_copies == 9
    inverse = np.argsort(perm)
    assert moved.bonds[0] == (inverse[0], inverse[1])
    e1 = potentials.energy_model(moved, species=species[perm], box=L).energy_fn(params["bonds"])
    np.testing.assert_allclose(e1(jnp.asarray(R[perm])), e0(jnp.asarray(R)), rtol=1e-12)


def dimer_frames(r, rng, box=L):
    """Frames ``[T, 2M, 3]`` of M dimers with lengths ``r [T, M]`` (nm), random
    orientations and positions, wrapped into the box (so many bonds cross it)."""
    d = rng.normal(size=(*r.shape, 3))
    d *= (r / np.linalg.norm(d, axis=-1))[..., None]
    a = rng.uniform(0, box, size=(*r.shape, 3))
    return np.mod(np.stack([a, a + d], axis=2).reshape(r.shape[0], -1, 3), box)


def test_fit_bonds_gaussian_lengths():
    # r_b ~ N(mu_b, sigma_b^2) per bond. Standard errors with T frames:
    # SE(r0) = sigma / sqrt(T); SE(k) / k = SE(Var) / Var = sqrt(2 / (T - 1)).
    n_frames = 20_000
    mu = np.array([0.15, 0.20, 0.31])
    sigma = np.array([0.004, 0.010, 0.020])
    rng = np.random.default_rng(0)
    R = dimer_frames(mu + sigma * rng.normal(size=(n_frames, 3)), rng)
    fit = potentials.fit_harmonic_bonds(R, ((0, 1), (2, 3), (4, 5)), T_K, box=L)
    assert set(fit) == {"k", "r0"}
    assert np.all(np.abs(fit["r0"] - mu) < 4 * sigma / np.sqrt(n_frames))
    k_true = KT / sigma**2
    assert np.all(np.abs(fit["k"] / k_true - 1) < 4 * np.sqrt(2 / (n_frames - 1)))  # < 4 %
    # the fit is the init of the term
    term = potentials.HarmonicBonds(bonds=((0, 1), (2, 3), (4, 5)), **fit)
    model = potentials.energy_model(term, species=np.zeros(6, np.int32), box=L)
    params = model.init_fn(jax.random.key(0), jnp.asarray(R[0]))
    np.testing.assert_allclose(params["k"], fit["k"], rtol=1e-6)


def test_fit_bonds_boltzmann_consistency():
    """Sample 3-d bond vectors from exp(-U/kT) of a known harmonic bond; the fit returns k.

    In 3-d the length density is r^2 exp(-k (r - r0)^2 / 2kT), so the fit
    (eq. 6a, a Gaussian in r) is exact only up to the Jacobian: k_fit / k - 1
    is about 2 kT / (k r0^2) = 2e-3 here. The moments of that density by
    quadrature are the expected values; the tolerances are 4 standard errors.
    """
    k, r0 = 1.0e5, 0.15  # kJ/mol/nm^2, nm: sigma = sqrt(kT / k) = 5.0e-3 nm
    sigma = np.sqrt(KT / k)
    n_frames, n_bonds = 10_000, 4
    rng = np.random.default_rng(1)
    # rejection sampling of r^2 exp(-U/kT) from the Gaussian exp(-U/kT)
    prop = r0 + sigma * rng.normal(size=4 * n_frames * n_bonds)
    r_max = r0 + 8 * sigma
    keep = rng.uniform(size=prop.size) < (prop / r_max) ** 2
    r = prop[keep][: n_frames * n_bonds].reshape(n_frames, n_bonds)
    R = dimer_frames(r, rng)
    bonds = [(2 * b, 2 * b + 1) for b in range(n_bonds)]
    # all bonds are copies of one: pool them
    fit = potentials.fit_harmonic_bonds(R, bonds, T_K, box=L, n_copies=n_bonds)
    assert fit["k"].shape == (1,)
    x = np.linspace(r0 - 10 * sigma, r0 + 10 * sigma, 20001)
    w = x**2 * np.exp(-0.5 * k * (x - r0) ** 2 / KT)
    mean = np.trapezoid(x * w, x) / np.trapezoid(w, x)
    var = np.trapezoid((x - mean) ** 2 * w, x) / np.trapezoid(w, x)
    n = n_frames * n_bonds
    assert abs(fit["r0"][0] - mean) < 4 * np.sqrt(var / n)
    assert abs(fit["k"][0] / (KT / var) - 1) < 4 * np.sqrt(2 / (n - 1))  # < 2.9 %
    assert abs(KT / var / k - 1) < 3e-3  # the Jacobian bias of eq. 6a in 3-d
    assert abs(fit["k"][0] / k - 1) < 4 * np.sqrt(2 / (n - 1)) + 3e-3


def test_fit_angles_gaussian_angles():
    n_frames = 20_000
    th0, sd = np.array([1.9, 2.6]), np.array([0.08, 0.15])
    rng = np.random.default_rng(2)
    theta = th0 + sd * rng.normal(size=(n_frames, 2))
    arms = 0.15 + 0.01 * rng.normal(size=(n_frames, 2, 2))
    local = np.zeros((n_frames, 2, 3, 3))
    local[..., 0, 0] = arms[..., 0]
    local[..., 2, 0] = arms[..., 1] * np.cos(theta)
    local[..., 2, 1] = arms[..., 1] * np.sin(theta)
    rot = np.stack([testing.random_rotation(rng) for _ in range(64)])
    local = np.einsum("tmpj,tij->tmpi", local, rot[rng.integers(0, 64, size=n_frames)])
    R = np.mod(local + rng.uniform(0, L, size=(n_frames, 2, 1, 3)), L).reshape(n_frames, 6, 3)
    fit = potentials.fit_harmonic_angles(R, ((0, 1, 2), (3, 4, 5)), T_K, box=L)
    assert set(fit) == {"k", "theta0"}
    assert np.all(np.abs(fit["theta0"] - th0) < 4 * sd / np.sqrt(n_frames))
    assert np.all(np.abs(fit["k"] / (KT / sd**2) - 1) < 4 * np.sqrt(2 / (n_frames - 1)))


def test_invalid_topology_and_data_raise():
    R, species = triatomic_system()
    frames = R[None] + 0.005 * np.random.default_rng(0).normal(size=(5, *R.shape))
    with pytest.raises(ValueError, match=r"bond 1 = \(2, 27\)"):
        potentials.fit_harmonic_bonds(frames, ((0, 1), (2, 27)), T_K, box=L)
    with pytest.raises(ValueError, match=r"angle 0 = \(0, 1, 1\) repeats"):
        potentials.fit_harmonic_angles(frames, ((0, 1, 1),), T_K, box=L)
    rigid = frames.copy()
    rigid[:, 1] = rigid[:, 0] + np.array([0.1, 0.0, 0.0])  # bond (0, 1) never changes length
    with pytest.raises(ValueError, match=r"zero variance.*\(0, 1\)"):
        potentials.fit_harmonic_bonds(rigid, ((2, 3), (0, 1)), T_K, box=L)
    with pytest.raises(ValueError, match="temperature"):
        potentials.fit_harmonic_bonds(frames, ((0, 1),), -1.0, box=L)
    # the term checks its topology against the system when called
    term = potentials.HarmonicBonds(bonds=((0, 1), (5, 30)), k=1.0, r0=0.1)
    model = potentials.energy_model(term, species=species, box=L)
    with pytest.raises(ValueError, match=r"bond 1 = \(5, 30\)"):
        model.init_fn(jax.random.key(0), jnp.asarray(R))
    with pytest.raises(ValueError, match="needs k"):
        potentials.energy_model(
            potentials.HarmonicAngles(angles=((0, 1, 2),), theta0=2.0), species=species, box=L
        ).init_fn(jax.random.key(0), jnp.asarray(R))
