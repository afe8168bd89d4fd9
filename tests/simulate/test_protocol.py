"""simulate.Protocol validates itself; simulate.sample is the runner's equilibrate-then-produce.

The equality tests compare sample() with the same stages written with the
integrators and the runner directly (the path every caller used before the
protocol existed), step for step, on 108 LJ atoms.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cgjax import potentials, simulate, units
from cgjax.simulate import _runner

T, DT = 120.0, 0.004  # K, ps


def test_protocol_validation_names_the_field():
    ok = dict(temperature=300.0, dt=0.002, production_steps=100, record_every=10)
    simulate.Protocol(**ok)
    bad = [
        (dict(temperature=-1.0), r"Protocol.temperature must be a positive number \(K\)"),
        (dict(dt=0.0), r"Protocol.dt must be a positive number \(ps\)"),
        (dict(dt=float("nan")), r"Protocol.dt must be a positive number"),
        (dict(production_steps=105), r"production_steps \(105\) must be a multiple of "
                                     r"record_every \(10\)"),
        (dict(equilibration_steps=15), r"equilibration_steps \(15\) must be a multiple"),
        (dict(record_every=0), r"Protocol.record_every must be an integer number of steps >= 1"),
        (dict(production_steps=2.5), r"production_steps must be an integer"),
        (dict(thermostat="berendsen"), r"Protocol.thermostat must be one of"),
        (dict(equilibration_thermostat="andersen"), r"equilibration_thermostat must be one of"),
        (dict(thermostat="langevin", friction=0.0), r"Protocol.friction must be a positive "
                                                    r"number \(1/ps\)"),
        (dict(tau=-0.5), r"Protocol.tau must be a positive number \(ps\)"),
        (dict(equilibration_friction=-1.0), r"equilibration_friction must be a positive"),
        (dict(skin=-0.1), r"Protocol.skin must be >= 0 \(nm\)"),
    ]  # fmt: skip
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            simulate.Protocol(**{**ok, **change})
    p = simulate.Protocol(**ok)
    with pytest.raises(ValueError, match="must be a multiple of record_every"):
        p.replace(production_steps=15)
    with pytest.raises(AttributeError):
        p.dt = 0.001  # frozen


def test_protocol_from_config_to_dict_and_str():
    section = ml_collections.ConfigDict(dict(
        dt=0.001, tau=0.2, equilibration_steps=1000, production_steps=6000, record_every=50,
        fit_window=(1.0, 2.5), equilibration_thermostat="langevin", equilibration_friction=10.0,
        skin=0.03,
    ))  # fmt: skip
    p = simulate.Protocol.from_config(section, temperature=300.0, seed=2)
    assert (p.dt, p.tau, p.production_steps, p.seed, p.skin) == (0.001, 0.2, 6000, 2, 0.03)
    assert p.kT == pytest.approx(units.kB * 300.0)
    assert simulate.Protocol(**p.to_dict()) == p
    assert str(p) == (
        "300 K, dt 0.001 ps: 1000 steps Langevin friction 10/ps, then 6000 steps Nose-Hoover "
        "tau 0.2 ps, a frame every 50, skin 0.03 nm, seed 2"
    )
    with pytest.raises(ValueError, match=r"\['dt'\] set both in the config section and by"):
        simulate.Protocol.from_config(section, temperature=300.0, dt=0.002)
    with pytest.raises(ValueError, match=r"unknown fields \['temprature'\]"):
        simulate.Protocol.from_config(section, temprature=300.0)
    with pytest.raises(TypeError, match="temperature"):
        simulate.Protocol.from_config(section)  # no temperature anywhere
    # the same thermostat named twice is one continuous run
    same = simulate.Protocol(temperature=300.0, dt=0.002, production_steps=10, record_every=10,
                             thermostat="langevin", equilibration_thermostat="langevin")
    assert same.equilibration_thermostat is None


@pytest.fixture(scope="module")
def fluid():
    R, L = simulate.fcc_lattice(3, 20.0)  # 108 atoms, 1.75 nm
    n = R.shape[0]
    box = np.eye(3) * L
    species = np.zeros(n, np.int32)
    lj = potentials.LennardJones(n_species=1, sigma=0.3405, epsilon=0.996, cutoff=0.7,
                                 r_onset=0.65)  # fmt: skip
    system = simulate.System.create(box=box, species=species, masses=np.full(n, 39.948))
    model = potentials.energy_model(lj, system=system)
    R = jnp.asarray(R, jnp.float32)
    return model, system, model.init_fn(jax.random.key(0), R), R


def _by_hand(model, system, params, R0, n_eq, n_prod, every, seed):
    """Langevin equilibration handed to Nose-Hoover, with the integrators and the runner."""
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R0)
    kw = {"params": params}

    def energy(R, *, params, neighbor=None, **unused):
        return model.energy_fn(params)(R, neighbor=neighbor)

    lang = simulate.nvt_langevin(energy, system, dt=DT, kT=units.kB * T, friction=5.0)
    nh = simulate.nvt_nose_hoover(energy, system, dt=DT, kT=units.kB * T, tau=0.5)
    key = jax.random.key(seed)
    common = dict(record_every=every, neighbor_fn=nf, monitor=simulate.Monitor(progress=False),
                  step_kwargs=kw)  # fmt: skip
    eq = simulate.run(lang, lang.init_fn(key, R0, neighbor=nb, **kw), n_steps=n_eq,
                      neighbor=nb, **common)  # fmt: skip
    state = nh.init_fn(key, eq.state.position, neighbor=eq.neighbor, momenta=eq.state.momentum,
                       **kw)  # fmt: skip
    return simulate.run(nh, state, n_steps=n_prod, neighbor=eq.neighbor, step0=n_eq, **common)


def test_sample_equals_the_stages_by_hand_and_continues(fluid):
    model, system, params, R0 = fluid
    p = simulate.Protocol(temperature=T, dt=DT, equilibration_steps=100, production_steps=100,
                          record_every=20, equilibration_thermostat="langevin",
                          equilibration_friction=5.0, seed=4)  # fmt: skip
    out = simulate.sample(model, params, R0, p, progress=False)
    ref = _by_hand(model, system, params, R0, 100, 100, 20, seed=4)
    np.testing.assert_array_equal(out.trajectory.positions, ref.trajectory.positions)
    np.testing.assert_array_equal(out.trajectory.time, ref.trajectory.time)
    assert out.trajectory.positions.shape == (5, 108, 3)
    assert set(out.wall_s) == {"equilibration", "production"} and out.protocol is p
    # other parameters, the same compiled simulation (the parameters are traced, and
    # equal settings give the same neighbor-list function, by which chunks are cached)
    hotter = {**params, "epsilon": params["epsilon"] * 1.1}
    n_compiled = len(_runner._CHUNK_CACHE)
    again = simulate.sample(model, hotter, R0, p, progress=False)
    assert again.simulator is out.simulator
    assert len(_runner._CHUNK_CACHE) == n_compiled
    assert np.max(np.abs(again.trajectory.positions - out.trajectory.positions)) > 1e-4
    # continuing a sample without equilibration equals one longer production
    cont = simulate.sample(model, params, out, p.replace(equilibration_steps=0), progress=False)
    longer = _by_hand(model, system, params, R0, 100, 200, 20, seed=4)
    np.testing.assert_allclose(cont.trajectory.unwrapped[-1] - cont.trajectory.unwrapped[0],
                               longer.trajectory.unwrapped[-1] - longer.trajectory.unwrapped[5],
                               atol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(cont.trajectory.positions, longer.trajectory.positions[5:])


def test_sample_names_the_stage_that_blew_up(fluid):
    model, system, params, R0 = fluid
    R = np.array(R0)
    R[1] = R[0] + np.array([0.03, 0.0, 0.0], np.float32)  # E ~ 1e12 kJ/mol
    p = simulate.Protocol(temperature=T, dt=DT, equilibration_steps=20, production_steps=20,
                          record_every=20)  # fmt: skip
    with pytest.raises(simulate.SimulationError) as err:
        simulate.sample(model, params, jnp.asarray(R), p, progress=False)
    assert err.value.stage == "equilibration"
    with pytest.raises(ValueError, match=r"start positions has 10 particles but the system"):
        simulate.sample(model, params, R0[:10], p, progress=False)


def test_the_model_carries_its_system(fluid):
    model, system, params, R0 = fluid
    assert model.system is system and model.shift_fn is system.shift_fn  # one space, built once
    np.testing.assert_array_equal(model.species, system.species)
    p = simulate.Protocol(temperature=T, dt=DT, production_steps=20, record_every=20)
    bare = potentials.energy_model(model.potential, species=system.species, box=system.box)
    with pytest.raises(ValueError, match=r"sample simulates, so it needs a model built on a "
                                         r"System \(masses, amu\)"):  # fmt: skip
        simulate.sample(bare, params, R0, p, progress=False)
    with pytest.raises(ValueError, match="give system= or species=/box=, not both"):
        potentials.energy_model(model.potential, species=system.species, system=system)
    # the same energies either way
    nb = model.neighbor_fn(skin=0.1).allocate(R0)
    e1 = model.energy_fn(params)(R0, neighbor=nb)
    e2 = bare.energy_fn(params)(R0, neighbor=nb)
    assert float(e1) == float(e2)
