"""``Frames``: a trajectory with forces, its box and where it came from.

Frames hold numpy arrays on the host (data, not traced state); hand
``frames.positions`` etc. to jitted code. Units: positions nm, forces
kJ/mol/nm, velocities nm/ps, masses amu, time ps, temperature K. Boxes follow
:mod:`cgjax._space`: ``[3, 3]`` matrices whose *columns* are the box vectors,
or ``[T, 3, 3]`` for one box per frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np
from jaxtyping import Float, Int

from cgjax._space import box_matrices, box_matrix, minimum_image, wrap
from cgjax._validation import check_finite, check_species

__all__ = [
    "Frames",
    "minimum_image",
    "provenance",
    "unwrap_trajectory",
    "wrap",
]

FORMAT = "cgjax.Frames/1"
_REQUIRED_KEYS = ("format", "positions", "species", "masses")
_ARRAYS = ("positions", "species", "masses", "forces", "velocities", "box", "times")
_VERSIONED = ("cgjax", "jax", "jaxlib", "jax-md", "numpy", "flax", "openmm", "MDAnalysis")


def provenance(generator: str, **extra: Any) -> dict:
    """A provenance record: what made the data, with which versions, when.

    Args:
      generator: the generator's name (e.g. ``"cgjax.reference.spce_water"``).
      **extra: anything else worth keeping (seed, settings); must be
        JSON-serialisable (numpy scalars and arrays are converted).

    Returns:
      a dict with ``generator``, ``versions`` (installed versions of cgjax,
      jax, jaxlib, jax-md, numpy, flax, openmm, MDAnalysis; absent ones are
      left out), ``argv`` and ``command`` (the exact command line),
      ``python``, ``platform``, ``date_utc`` (ISO 8601), then ``extra``.
    """
    versions = {}
    for name in _VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    record = {
        "generator": generator,
        "versions": versions,
        "argv": list(sys.argv),
        "command": shlex.join(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(extra)
    return _as_json(record, "provenance")


# --- periodic images ------------------------------------------------------------


def unwrap_trajectory(positions: Float[np.ndarray, "T N 3"], box: Any) -> np.ndarray:
    """Continuous trajectories from wrapped frames (nm).

    Accumulates minimum-image frame-to-frame displacements from the first
    frame, taking each step's image in the box of the frame it arrives at (the
    scheme of von Bülow et al. for fluctuating boxes). Exact when no particle
    moves more than half the smallest box width between saved frames.

    Args:
      positions: ``[T, N, 3]`` (nm).
      box: ``None``, scalar, ``[3]``, ``[3, 3]`` or ``[T, 3, 3]`` (nm).

    Returns:
      ``[T, N, 3]`` in the dtype of ``positions``; frame 0 is unchanged.

    References:
      S. von Bülow, J. T. Bullerjahn, G. Hummer, J. Chem. Phys. 153, 021101 (2020).
    """
    r = np.asarray(positions)
    if r.ndim != 3 or r.shape[-1] != 3:
        raise ValueError(f"positions must have shape [T, N, 3] (nm), got {r.shape}")
    b = box_matrices(box)
    if b is None or r.shape[0] < 2:
        return np.array(r, copy=True)
    steps = np.diff(r.astype(np.float64), axis=0)
    steps = minimum_image(steps, b[1:] if b.ndim == 3 else b)
    out = np.concatenate([r[:1].astype(np.float64), r[:1] + np.cumsum(steps, axis=0)])
    return out.astype(r.dtype, copy=False)


# --- JSON fields -----------------------------------------------------------------


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


def _as_json(d: Any, name: str) -> dict:
    """``d`` as plain JSON types (a round trip), so save/load changes nothing."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"{name} must be a dict, got {type(d).__name__}")
    try:
        return json.loads(json.dumps(d, default=_json_default, allow_nan=True))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be JSON-serialisable: {e}") from e


# --- checks ------------------------------------------------------------------------


def _check_frames_finite(a: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        t, i, c = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite (NaN or inf) entries; the first is "
            f"at frame {t}, particle {i}, component {c}"
        )


def _as_float(x: Any) -> np.ndarray:
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _positive_scalar(x: Any, name: str, unit: str) -> float | None:
    if x is None:
        return None
    v = float(x)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number ({unit}), got {x!r}")
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class Frames:
    """A trajectory of ``T`` frames of ``N`` particles, validated on construction.

    Attributes:
      positions: ``[T, N, 3]`` (nm).
      species: ``[N]`` int32.
      masses: ``[N]`` (amu), positive.
      forces: ``[T, N, 3]`` (kJ/mol/nm) or ``None``.
      velocities: ``[T, N, 3]`` (nm/ps) or ``None``.
      box: ``None`` (free space), ``[3, 3]`` fixed or ``[T, 3, 3]`` per frame
        (nm; columns are box vectors). A scalar, ``[3]`` lengths or ``[T, 3]``
        per-frame lengths are accepted and normalised (a ``[3, 3]`` input is
        always one matrix).
      temperature: K, or ``None``.
      dt: time between consecutive frames (ps), or ``None``.
      times: ``[T]`` frame times (ps), or ``None`` (then ``time`` is ``arange(T) * dt``).
      provenance: how the data was made (see :func:`provenance`).
      metadata: free JSON-serialisable dict (e.g. ``species_names``: name -> int).

    Positions, forces and velocities keep a floating dtype they are given in
    (integers become float64); masses, box and times are float64. ``times``
    must increase and there is at least one frame. The arrays are read-only
    (views; ``replace`` makes new frames). ``provenance``
    and ``metadata`` are stored as plain JSON types (numpy values become
    Python ones, tuples become lists).
    """

    positions: Float[np.ndarray, "T N 3"]
    species: Int[np.ndarray, " N"]
    masses: Float[np.ndarray, " N"]
    _: dataclasses.KW_ONLY
    forces: Float[np.ndarray, "T N 3"] | None = None
    velocities: Float[np.ndarray, "T N 3"] | None = None
    box: Float[np.ndarray, "3 3"] | Float[np.ndarray, "T 3 3"] | None = None
    temperature: float | None = None
    dt: float | None = None
    times: Float[np.ndarray, " T"] | None = None
    provenance: dict | None = None
    metadata: dict | None = None

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)
        put("positions", _as_float(self.positions))
        put("species", check_species(self.species, None, "species"))
        put("masses", np.asarray(self.masses, dtype=np.float64))
        for name in ("forces", "velocities"):
            if getattr(self, name) is not None:
                put(name, _as_float(getattr(self, name)))
        put("box", self._normalised_box())
        if self.times is not None:
            put("times", np.asarray(self.times, dtype=np.float64))
        put("temperature", _positive_scalar(self.temperature, "temperature", "K"))
        put("dt", _positive_scalar(self.dt, "dt", "ps"))
        put("provenance", _as_json(self.provenance, "provenance"))
        put("metadata", _as_json(self.metadata, "metadata"))
        self.validate()
        for name in _ARRAYS:  # read-only views: validated data cannot change behind our back
            a = getattr(self, name)
            if a is not None:
                a = a.view()
                a.flags.writeable = False
                put(name, a)

    def _normalised_box(self):
        if self.box is None:
            return None
        b = np.asarray(self.box, dtype=np.float64)
        n_frames = self.positions.shape[0] if self.positions.ndim == 3 else None
        if b.ndim == 2 and b.shape[1] == 3 and b.shape[0] == n_frames and b.shape != (3, 3):
            if np.any(b <= 0):
                raise ValueError("box: per-frame lengths [T, 3] must be positive (nm)")
            return np.einsum("ti,ij->tij", b, np.eye(3))
        if b.ndim == 3:
            return b
        return box_matrix(b)

    def validate(self) -> Frames:
        """Checks shapes, finiteness and ranges; returns ``self``.

        Raises:
          ValueError: naming the array, what was expected, and for non-finite
            values the first bad frame and particle.
        """
        R = self.positions
        if R.ndim != 3 or R.shape[-1] != 3:
            raise ValueError(f"positions must have shape [T, N, 3] (nm), got shape {R.shape}")
        T, N, _ = R.shape
        if T == 0:
            raise ValueError(
                f"positions has no frames (shape {list(R.shape)}); Frames needs at least one"
            )
        _check_frames_finite(R, "positions")
        if self.species.shape != (N,):
            raise ValueError(
                f"species must have shape [N] = [{N}] (one per particle in positions), "
                f"got {self.species.shape}"
            )
        if self.masses.shape != (N,):
            raise ValueError(
                f"masses must have shape [N] = [{N}] (amu, one per particle in positions), "
                f"got {self.masses.shape}"
            )
        check_finite(self.masses, "masses")
        if N and self.masses.min() <= 0:
            i = int(np.argmin(self.masses))
            raise ValueError(f"masses must be positive (amu); masses[{i}] = {self.masses[i]}")
        for name, unit in (("forces", "kJ/mol/nm"), ("velocities", "nm/ps")):
            a = getattr(self, name)
            if a is None:
                continue
            if a.shape != R.shape:
                raise ValueError(
                    f"{name} must have the shape of positions [T, N, 3] = {list(R.shape)} "
                    f"({unit}), got {list(a.shape)}"
                )
            _check_frames_finite(a, name)
        if self.box is not None and self.box.ndim == 3:
            if self.box.shape != (T, 3, 3):
                raise ValueError(
                    f"box must be [3, 3] or one [3, 3] matrix per frame [T, 3, 3] = "
                    f"[{T}, 3, 3] (nm), got {self.box.shape}"
                )
            check_finite(self.box, "box")
            det = np.linalg.det(self.box) if T else np.ones(0)
            if np.any(det <= 0):
                t = int(np.argmax(det <= 0))
                raise ValueError(
                    f"box must have positive volume in every frame; frame {t} has det = {det[t]}"
                )
        if self.times is not None:
            if self.times.shape != (T,):
                raise ValueError(f"times must have shape [T] = [{T}] (ps), got {self.times.shape}")
            check_finite(self.times, "times")
            steps = np.diff(self.times)
            if np.any(steps <= 0):
                t = int(np.argmax(steps <= 0)) + 1
                raise ValueError(
                    f"times must increase from frame to frame (ps); times[{t}] = "
                    f"{self.times[t]} follows times[{t - 1}] = {self.times[t - 1]}"
                )
        return self

    def __repr__(self) -> str:
        box = "None" if self.box is None else ("per-frame" if self.box.ndim == 3 else "fixed")
        have = [k for k in ("forces", "velocities", "times") if getattr(self, k) is not None]
        return (
            f"Frames(n_frames={self.n_frames}, n_particles={self.n_particles}, "
            f"dtype={self.positions.dtype}, with={have}, box={box}, dt={self.dt}, "
            f"temperature={self.temperature}, generator={self.provenance.get('generator')!r})"
        )

    # --- shape and time -----------------------------------------------------------

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_particles(self) -> int:
        return int(self.positions.shape[1])

    @property
    def time(self) -> Float[np.ndarray, " T"]:
        """``[T]`` frame times (ps): ``times`` if set, else ``arange(T) * dt``."""
        if self.times is not None:
            return self.times
        if self.dt is None:
            raise ValueError("frames have neither times nor dt (ps); set one of them")
        return np.arange(self.n_frames) * self.dt

    def replace(self, **changes: Any) -> Frames:
        """A copy with fields replaced, validated again."""
        return dataclasses.replace(self, **changes)

    # --- subsets --------------------------------------------------------------------

    def select(self, frames: Any) -> Frames:
        """The frames at ``frames`` (an index, slice, index array or boolean mask).

        Frame times are carried along (``times`` is set when time is known);
        ``dt`` becomes ``dt * step`` for evenly spaced selections and ``None``
        otherwise. An integer gives a one-frame ``Frames``.
        """
        idx = np.arange(self.n_frames)[frames]
        idx = np.atleast_1d(idx)
        has_time = self.times is not None or self.dt is not None
        dt = self.dt
        if dt is not None and idx.size >= 2:
            steps = np.diff(idx)
            dt = dt * int(steps[0]) if steps[0] > 0 and np.all(steps == steps[0]) else None
        pick = lambda a: None if a is None else a[idx]
        return Frames(
            self.positions[idx],
            self.species,
            self.masses,
            forces=pick(self.forces),
            velocities=pick(self.velocities),
            box=self.box[idx] if self.box is not None and self.box.ndim == 3 else self.box,
            temperature=self.temperature,
            dt=dt,
            times=self.time[idx] if has_time else None,
            provenance=self.provenance,
            metadata=self.metadata,
        )

    __getitem__ = select

    def split(
        self,
        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        *,
        n_blocks: int = 10,
        seed: int = 0,
        gap: int = 0,
    ) -> tuple[Frames | None, Frames | None, Frames | None]:
        """``(train, validation, test)`` frames from :func:`split_blocks`.

        Each part records the split (fractions, blocks, seed, gap) in its
        provenance under ``"split"``. A part of fraction 0 is ``None``.
        """
        from cgjax.data._split import split_blocks

        parts = split_blocks(self.n_frames, fractions, n_blocks=n_blocks, seed=seed, gap=gap)
        out = []
        for name, idx in zip(("train", "validation", "test"), parts, strict=True):
            if len(idx) == 0:  # a fraction of 0: Frames have at least one frame
                out.append(None)
                continue
            record = {"part": name, "fractions": list(fractions), "n_blocks": n_blocks}
            record.update(seed=seed, gap=gap, n_frames=len(idx))
            part = self.select(idx)
            out.append(part.replace(provenance={**part.provenance, "split": record}))
        return tuple(out)

    def unwrapped(self) -> Frames:
        """Positions made continuous across frames (:func:`unwrap_trajectory`)."""
        return self.replace(positions=unwrap_trajectory(self.positions, self.box))

    def wrapped(self) -> Frames:
        """Positions moved into the primary cell (:func:`wrap`)."""
        return self.replace(positions=wrap(self.positions, self.box))

    # --- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Writes a compressed ``.npz`` at exactly ``path``, atomically.

        The data goes to a temporary file in the same directory, is flushed to
        disk, then renamed over ``path``; a failure at any point leaves
        ``path`` as it was (absent, or the previous file). ``provenance`` and
        ``metadata`` are stored as JSON strings.
        """
        path = os.fspath(path)
        arrays = {
            "format": np.array(FORMAT),
            "positions": self.positions,
            "species": self.species,
            "masses": self.masses,
            "provenance": np.array(json.dumps(self.provenance)),
            "metadata": np.array(json.dumps(self.metadata)),
        }
        for name in ("forces", "velocities", "box", "times", "temperature", "dt"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value)
        directory = os.path.dirname(os.path.abspath(path))
        mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> Frames:
        """Reads frames written by :meth:`save` and validates them.

        Raises:
          FileNotFoundError: if there is no file at ``path``.
          ValueError: naming the file when it is truncated or corrupt, is not a
            cgjax Frames file, lacks a key (named), or holds invalid data.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no Frames file at {path}")
        # NotImplementedError: a header naming an unknown zip version or
        # compression; RuntimeError: a header flagging the entry as encrypted
        # (both found by flipping single bytes of a saved file)
        corrupt = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                   NotImplementedError, RuntimeError)  # fmt: skip
        try:
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with z:
                data = {k: z[k] for k in z.files}
        except corrupt as e:
            raise ValueError(
                f"{path} is not a readable cgjax Frames .npz file (truncated or corrupt?): {e}"
            ) from e
        for key in _REQUIRED_KEYS:
            if key not in data:
                raise ValueError(f"{path} has no {key!r} entry; it is not a complete Frames file")
        if str(data["format"]) != FORMAT:
            raise ValueError(f"{path} has format {str(data['format'])!r}, expected {FORMAT!r}")
        fields = {}
        for key in ("provenance", "metadata"):
            try:
                fields[key] = json.loads(str(data[key])) if key in data else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: the {key!r} entry is not valid JSON: {e}") from e
        for key in ("forces", "velocities", "box", "times"):
            fields[key] = data.get(key)
        for key in ("temperature", "dt"):
            fields[key] = float(data[key]) if key in data else None
        try:
            return cls(data["positions"], data["species"], data["masses"], **fields)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
