"""Frames: validation, atomic save/load, selections, block splits, wrap/unwrap."""

import os

import numpy as np
import pytest

from cgjax import data


def _frames(T=6, N=4, seed=0, **kw):
    rng = np.random.default_rng(seed)
    args = dict(
        forces=rng.normal(size=(T, N, 3)),
        velocities=rng.normal(size=(T, N, 3)).astype(np.float32),
        box=np.diag([2.0, 2.5, 3.0]),
        temperature=300.0,
        dt=0.01,
        provenance=data.provenance("test", seed=seed),
        metadata={"species_names": {"A": 0, "B": 1}, "note": "toy"},
    )
    args.update(kw)
    return data.Frames(
        rng.uniform(0, 2, (T, N, 3)).astype(np.float32),
        np.arange(N) % 2,
        np.linspace(1.0, 4.0, N),
        **args,
    )


# --- validation ---------------------------------------------------------------


def test_shapes_and_time():
    f = _frames()
    assert (f.n_frames, f.n_particles) == (6, 4)
    np.testing.assert_allclose(f.time, 0.01 * np.arange(6))
    assert f.positions.dtype == np.float32 and f.velocities.dtype == np.float32
    assert f.forces.dtype == np.float64 and f.species.dtype == np.int32


def test_nan_forces_name_forces_and_first_frame_particle():
    f = _frames()
    bad = f.forces.copy()
    bad[2, 1, 0] = np.nan
    bad[4, 3, 2] = np.inf
    with pytest.raises(ValueError, match=r"forces has 2 non-finite .* frame 2, particle 1"):
        f.replace(forces=bad)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"masses": np.ones(3)}, r"masses must have shape \[N\] = \[4\]"),
        ({"masses": np.array([1.0, 0.0, 1.0, 1.0])}, r"masses must be positive .*masses\[1\]"),
        ({"species": np.zeros(5, int)}, r"species must have shape \[N\] = \[4\]"),
        ({"forces": np.zeros((6, 3, 3))}, r"forces must have the shape of positions"),
        ({"velocities": np.zeros((5, 4, 3))}, r"velocities must have the shape of positions"),
        ({"positions": np.zeros((6, 4, 2))}, r"positions must have shape \[T, N, 3\]"),
        ({"box": np.diag([1.0, -1.0, 1.0])}, r"box"),
        ({"box": np.ones((5, 3, 3))}, r"box must be \[3, 3\] or one \[3, 3\] matrix per frame"),
        ({"times": np.zeros(5)}, r"times must have shape \[T\] = \[6\]"),
        (
            {"times": [0.0, 0.1, 0.1, 0.2, 0.3, 0.4]},
            r"times must increase .*times\[2\] = 0.1 follows times\[1\] = 0.1",
        ),
        ({"times": [0.0, 0.1, 0.2, 0.15, 0.3, 0.4]}, r"times\[3\] = 0.15 follows times\[2\]"),
        ({"positions": np.zeros((0, 4, 3))}, r"positions has no frames \(shape \[0, 4, 3\]\)"),
        ({"temperature": -1.0}, r"temperature must be a positive number"),
        ({"dt": 0.0}, r"dt must be a positive number"),
        ({"metadata": {"x": object()}}, r"metadata must be JSON-serialisable"),
    ],
)
def test_invalid_fields_raise_naming_the_array(change, message):
    with pytest.raises(ValueError, match=message):
        _frames().replace(**change)


def test_box_forms_are_normalised():
    T = 6
    assert _frames(box=2.0).box.shape == (3, 3)
    np.testing.assert_array_equal(_frames(box=[1.0, 2.0, 3.0]).box, np.diag([1.0, 2.0, 3.0]))
    per_frame = _frames(box=np.tile([2.0, 2.5, 3.0], (T, 1)))
    assert per_frame.box.shape == (T, 3, 3)
    np.testing.assert_array_equal(per_frame.box[3], np.diag([2.0, 2.5, 3.0]))
    flipped = np.tile(np.eye(3), (T, 1, 1))
    flipped[4, 2, 2] = -1.0
    with pytest.raises(ValueError, match="frame 4"):
        _frames(box=flipped)


# --- files --------------------------------------------------------------------------


def test_save_load_round_trip_all_fields(tmp_path):
    T = 6
    boxes = np.stack(
        [
            np.array([[2.0, 0.3, 0.1], [0, 2.1, 0.2], [0, 0, 2.2]]) * s
            for s in np.linspace(1, 1.1, T)
        ]
    )
    f = _frames(box=boxes, times=np.linspace(5.0, 5.5, T))
    path = tmp_path / "frames.npz"
    f.save(path)
    g = data.Frames.load(path)
    for name in ("positions", "species", "masses", "forces", "velocities", "box", "times"):
        a, b = getattr(f, name), getattr(g, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (g.temperature, g.dt) == (300.0, 0.01)
    assert g.provenance == f.provenance and g.provenance["seed"] == 0
    assert g.metadata == {"species_names": {"A": 0, "B": 1}, "note": "toy"}
    # Optional fields absent stay absent.
    bare = data.Frames(f.positions, f.species, f.masses)
    bare.save(path)
    h = data.Frames.load(path)
    assert h.forces is None and h.box is None and h.dt is None and h.metadata == {}


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "frames.npz"
    _frames(seed=1).save(path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        _frames(seed=2).save(path)
    with pytest.raises(OSError, match="disk full"):
        _frames(seed=2).save(tmp_path / "new.npz")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["frames.npz"]  # no partial or temporary files
    monkeypatch.undo()
    np.testing.assert_array_equal(data.Frames.load(path).positions, _frames(seed=1).positions)


def test_truncated_or_corrupt_files_raise_naming_the_file(tmp_path):
    path = tmp_path / "frames.npz"
    _frames().save(path)
    blob = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        data.Frames.load(cut)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz"):
        data.Frames.load(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single.npy"):
        data.Frames.load(single)
    with pytest.raises(FileNotFoundError):
        data.Frames.load(tmp_path / "absent.npz")


def test_corrupt_zip_headers_raise_naming_the_file(tmp_path):
    """The two corruptions of one byte that escaped as NotImplementedError and
    RuntimeError: the zip version an entry needs, and its encryption flag."""
    path = tmp_path / "frames.npz"
    _frames().save(path)
    blob = path.read_bytes()
    entry = blob.index(b"PK\x01\x02")  # the first entry of the central directory
    for offset, value, what in ((6, 0xFF, "zip file version"), (8, 0x01, "encrypted")):
        bad = bytearray(blob)
        bad[entry + offset] = value
        broken = tmp_path / f"broken_{offset}.npz"
        broken.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match=rf"broken_{offset}.npz is not a readable .*{what}"):
            data.Frames.load(broken)


def test_arrays_are_read_only_views():
    R = np.zeros((2, 3, 3))
    f = data.Frames(R, np.zeros(3, int), np.ones(3), times=[0.0, 1.0], box=3.0)
    for name in ("positions", "species", "masses", "box", "times"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(f, name)[0] = 1
    R[0, 0, 0] = 1.0  # the caller's own array stays writeable
    g = f.replace(positions=f.positions + 1.0)
    assert not g.positions.flags.writeable and g.positions[0, 0, 0] == 2.0


def test_missing_key_raises_naming_key(tmp_path):
    path = tmp_path / "partial.npz"
    f = _frames()
    np.savez_compressed(
        path, format=np.array("cgjax.Frames/1"), positions=f.positions, species=f.species
    )
    with pytest.raises(ValueError, match=r"partial.npz has no 'masses' entry"):
        data.Frames.load(path)


def test_load_validates(tmp_path):
    path = tmp_path / "nan.npz"
    f = _frames()
    forces = f.forces.copy()
    forces[3, 0, 1] = np.nan
    np.savez_compressed(
        path,
        format=np.array("cgjax.Frames/1"),
        positions=f.positions,
        species=f.species,
        masses=f.masses,
        forces=forces,
    )
    with pytest.raises(ValueError, match=r"nan.npz: forces .* frame 3, particle 0"):
        data.Frames.load(path)


# --- selections and splits -----------------------------------------------------------


def test_select_carries_time():
    f = _frames(T=10)
    every_third = f[1::3]
    assert every_third.n_frames == 3 and every_third.dt == pytest.approx(0.03)
    np.testing.assert_allclose(every_third.time, [0.01, 0.04, 0.07])
    uneven = f.select(np.array([0, 1, 5]))
    assert uneven.dt is None
    np.testing.assert_allclose(uneven.time, [0.0, 0.01, 0.05])
    one = f[4]
    assert one.n_frames == 1 and one.time[0] == pytest.approx(0.04)
    np.testing.assert_array_equal(one.forces[0], f.forces[4])


def _blocks(n_frames, n_blocks):
    return np.array_split(np.arange(n_frames), n_blocks)


@pytest.mark.parametrize("n_frames, n_blocks", [(100, 10), (103, 7), (50, 20)])
def test_split_blocks_disjoint_complete_contiguous(n_frames, n_blocks):
    parts = data.split_blocks(n_frames, (0.7, 0.15, 0.15), n_blocks=n_blocks, seed=3)
    joined = np.concatenate(parts)
    assert len(joined) == n_frames and np.array_equal(np.sort(joined), np.arange(n_frames))
    owner = np.empty(n_frames, int)
    for k, p in enumerate(parts):
        owner[p] = k
        assert np.all(np.diff(p) > 0)
    for block in _blocks(n_frames, n_blocks):
        assert len(np.unique(owner[block])) == 1  # a block never straddles two parts
    counts = [len(p) for p in parts]
    assert all(c > 0 for c in counts)


def test_split_blocks_fractions_and_determinism():
    a = data.split_blocks(1000, (0.8, 0.1, 0.1), n_blocks=10, seed=0)
    b = data.split_blocks(1000, (0.8, 0.1, 0.1), n_blocks=10, seed=0)
    c = data.split_blocks(1000, (0.8, 0.1, 0.1), n_blocks=10, seed=1)
    assert [len(p) for p in a] == [800, 100, 100]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_split_blocks_zero_frame_split_raises():
    with pytest.raises(ValueError, match="test split would have zero frames"):
        data.split_blocks(100, (0.8, 0.15, 0.05), n_blocks=5)
    empty_test = data.split_blocks(100, (0.9, 0.1, 0.0), n_blocks=10)
    assert len(empty_test[2]) == 0 and len(empty_test[0]) == 90
    with pytest.raises(ValueError, match="sum to 1"):
        data.split_blocks(100, (0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="n_blocks must be between 1 and n_frames"):
        data.split_blocks(5, n_blocks=10)


def test_split_gap_separates_parts():
    parts = data.split_blocks(200, (0.6, 0.2, 0.2), n_blocks=10, seed=4, gap=3)
    owner = np.full(200, -1)
    for k, p in enumerate(parts):
        owner[p] = k
    used = np.flatnonzero(owner >= 0)
    for i, j in zip(used[:-1], used[1:], strict=True):
        if owner[i] != owner[j]:
            assert j - i >= 4


def test_frames_split():
    f = _frames(T=40)
    train, val, test = f.split((0.5, 0.25, 0.25), n_blocks=4, seed=0)
    assert (train.n_frames, val.n_frames, test.n_frames) == (20, 10, 10)
    assert train.provenance["split"]["part"] == "train"
    idx = np.round(test.time / 0.01).astype(int)
    np.testing.assert_array_equal(test.positions, f.positions[idx])
    train, val, test = f.split((0.8, 0.2, 0.0), n_blocks=5, seed=0)  # no test part
    assert (train.n_frames, val.n_frames, test) == (32, 8, None)


# --- periodic images ---------------------------------------------------------------

TRICLINIC = np.array([[2.0, 0.5, 0.3], [0.0, 1.8, 0.4], [0.0, 0.0, 1.6]])


@pytest.mark.parametrize("box", [np.diag([2.0, 1.8, 1.6]), TRICLINIC])
def test_wrap_unwrap_round_trip(box):
    rng = np.random.default_rng(7)
    T, N = 200, 5
    start = rng.uniform(0, 1, (N, 3)) @ box.T  # inside the cell
    steps = rng.normal(scale=0.1, size=(T - 1, N, 3))  # well under half a box width
    continuous = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
    wrapped = data.wrap(continuous, box)
    assert np.mean(np.abs(wrapped - continuous).max(axis=-1) > 1.0) > 0.3  # they leave the cell
    s = wrapped @ np.linalg.inv(box).T
    assert s.min() >= 0 and s.max() < 1
    np.testing.assert_allclose(data.unwrap_trajectory(wrapped, box), continuous, atol=1e-12)
    np.testing.assert_allclose(
        data.wrap(data.unwrap_trajectory(wrapped, box), box), wrapped, atol=1e-12
    )


def test_unwrap_with_per_frame_box():
    rng = np.random.default_rng(1)
    T = 50
    continuous = 0.5 + np.cumsum(rng.normal(scale=0.1, size=(T, 3, 3)), axis=0)
    same = np.tile(TRICLINIC, (T, 1, 1))
    wrapped = data.wrap(continuous, same)
    np.testing.assert_allclose(
        data.unwrap_trajectory(wrapped, same), continuous - continuous[0] + wrapped[0], atol=1e-12
    )
    # A fluctuating box: each unwrapped step is the minimum-image step in the
    # box of the frame it arrives at (von Buelow et al. 2020).
    boxes = TRICLINIC[None] * (1.0 + 0.02 * np.sin(np.arange(T)))[:, None, None]
    wrapped = data.wrap(continuous, boxes)
    u = data.unwrap_trajectory(wrapped, boxes)
    for t in range(1, T):
        step = data.minimum_image(wrapped[t] - wrapped[t - 1], boxes[t])
        np.testing.assert_allclose(u[t] - u[t - 1], step, atol=1e-12)
    f = data.Frames(wrapped, [0, 0, 0], [1.0, 1.0, 1.0], box=boxes)
    np.testing.assert_array_equal(f.unwrapped().positions, u)


def test_provenance_record():
    p = data.provenance("cgjax.reference.toy", seed=np.int64(5), settings={"T": np.float32(300.0)})
    assert p["generator"] == "cgjax.reference.toy" and p["seed"] == 5
    assert {"cgjax", "jax", "numpy"} <= set(p["versions"])
    assert isinstance(p["argv"], list) and p["date_utc"].endswith("+00:00")
    assert p["settings"] == {"T": 300.0}
