"""jax.export artifacts: paper 004's GNN + LJ + HF after a save/load round trip, with jax alone."""

import json
import os
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import datasets, export, potentials, simulate

CUTOFF = 0.6  # nm
LOADER = os.path.join(os.path.dirname(export.__file__), "_load.py")


@pytest.fixture(scope="module")
def gnn_model(tmp_path_factory):
    """Paper 004's U_GNN + U_LJ + U_HF (as experiments/spce_dynamics.py builds it),
    a small randomly initialised GNN, on the shipped SPC/E beads; exported once."""
    frames = datasets.load("spce_512", wrapped=True)
    R = np.asarray(frames.positions[:3], np.float32)
    n = R.shape[1]
    system = simulate.System.create(box=frames.box, species=np.zeros(n, np.int32), masses=18.015)
    gnn = potentials.build("gnn", dict(embed_dim=8, message_dim=8, n_rbf=8), cutoff=CUTOFF,
                           n_species=1)  # fmt: skip
    lj = potentials.LennardJones(n_species=1, sigma=0.3166, epsilon=0.65, cutoff=CUTOFF,
                                 r_onset=0.5)  # fmt: skip
    hf = potentials.HighFrequency(n_species=1, amplitude=0.05, omega=1000.0, cutoff=CUTOFF)
    model = potentials.energy_model(potentials.sum_of(gnn=gnn, lj=lj, hf=hf), system=system)
    params = model.init_fn(jax.random.key(0), jnp.asarray(R[0]))
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(0)  # every weight non-zero, so the GNN's forces matter
    params = treedef.unflatten(
        [x + jnp.asarray(0.1 * rng.normal(size=x.shape), x.dtype) for x in leaves]
    )
    path = tmp_path_factory.mktemp("artifact") / "gnn.cgjax"
    meta = export.export_potential(model, params, R[:2], path)
    return model, params, R, path, meta


@pytest.fixture(scope="module")
def loaded(gnn_model):
    """The artifact loaded once (one compile shared by the tests)."""
    return export.load(gnn_model[3])


@pytest.fixture(scope="module")
def live(gnn_model):
    """The live model's energy and forces at the third frame (not among the two exported from)."""
    model, params, R, _, _ = gnn_model
    nbrs = model.neighbor_fn(skin=0.0).allocate(R[2])
    e, g = jax.jit(jax.value_and_grad(lambda x: model.energy_fn(params)(x, neighbor=nbrs)))(
        jnp.asarray(R[2])
    )
    assert g.dtype == jnp.float32
    return float(e), -np.asarray(g)


def assert_float32_roundoff(e, f, e_ref, f_ref):
    """Equal to float32 round-off: energy to 1e-6 relative, forces to 1e-5 of the largest."""
    assert e == pytest.approx(e_ref, rel=1e-6)
    assert np.max(np.abs(f - f_ref)) <= 1e-5 * np.max(np.abs(f_ref))


def test_round_trip_gives_the_live_forces(gnn_model, loaded, live):
    _, _, R, path, meta = gnn_model
    art = loaded
    assert art.metadata == meta
    assert meta["format_version"] == export.FORMAT_VERSION
    assert meta["jax_version"] == jax.__version__
    assert meta["n_particles"] == 512 and meta["cutoff"] == CUTOFF and meta["dtype"] == "float32"
    assert meta["potential"] == ["gnn: GNN", "lj: LennardJones", "hf: HighFrequency"]
    assert meta["neighbor_list"]["edge_capacity"] > 0 and meta["box"][0][0] > 2.0
    out = art(jnp.asarray(R[2]))
    assert out.forces.shape == (512, 3) and out.forces.dtype == jnp.float32
    assert not bool(out.overflow)
    assert_float32_roundoff(float(out.energy), np.asarray(out.forces), *live)
    e, f = art.energy_and_forces(jnp.asarray(R[2]))
    np.testing.assert_array_equal(np.asarray(f), np.asarray(out.forces))


def test_loader_runs_with_jax_alone(gnn_model, live, tmp_path):
    """A fresh process that imports only cgjax/export/_load.py (by path): no cgjax, no flax."""
    _, _, R, path, _ = gnn_model
    np.save(tmp_path / "R.npy", R[2])
    code = f"""
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("standalone_load", {LOADER!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
e, f = mod.load({str(path)!r}).energy_and_forces(np.load({str(tmp_path / "R.npy")!r}))
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("cgjax", "flax", "jax_md"))
assert not bad, bad
np.save({str(tmp_path / "F.npy")!r}, np.asarray(f))
print(float(e))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert_float32_roundoff(float(out.stdout.split()[-1]), np.load(tmp_path / "F.npy"), *live)


def test_overflow_is_reported(gnn_model, loaded):
    R, art = gnn_model[2], loaded
    squeezed = jnp.asarray(R[2] * 0.7)  # 2.9x the density in part of the box
    assert bool(art(squeezed).overflow)
    with pytest.raises(export.CapacityOverflowError, match="overflowed"):
        art.energy_and_forces(squeezed)


def test_bad_artifacts_and_inputs(gnn_model, loaded, tmp_path):
    _, _, R, path, _ = gnn_model
    art = loaded
    with pytest.raises(export.ArtifactError, match=r"positions must be \(512, 3\) float32"):
        art(jnp.asarray(R[2, :10]))
    with pytest.raises(export.ArtifactError, match=r"float32"):
        art(np.asarray(R[2], np.float64))
    # the same artifact relabelled as another format version
    other = tmp_path / "v2.cgjax"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(other, "w") as zout:
        meta = json.loads(zin.read("metadata.json"))
        meta["format_version"] = export.FORMAT_VERSION + 1
        zout.writestr("metadata.json", json.dumps(meta))
        zout.writestr("exported.bin", zin.read("exported.bin"))
    with pytest.raises(export.ArtifactVersionError, match="format version 2 .*reads version 1"):
        export.load(other)
    junk = tmp_path / "junk.cgjax"
    junk.write_bytes(b"not a zip")
    with pytest.raises(export.ArtifactError, match="junk.cgjax: not a cgjax potential artifact"):
        export.load(junk)
    with pytest.raises(ValueError, match=r"R must be \[N, 3\] or \[T, N, 3\] with N = 512"):
        export.export_potential(gnn_model[0], gnn_model[1], R[:, :10], tmp_path / "x.cgjax")
