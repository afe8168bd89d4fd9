"""Loads a cgjax potential exported with ``jax.export``: jax alone, no model code.

This module imports only the standard library, numpy and jax (no flax, no
cgjax potentials), so it can be copied next to an artifact and run where
cgjax is not installed.

An artifact is a zip file holding ``metadata.json`` and ``exported.bin``
(``jax.export.Exported.serialize()``: StableHLO with the parameters baked in
as constants). The function maps positions ``R [N, 3]`` (nm) to
``(energy (kJ/mol), forces [N, 3] (kJ/mol/nm), overflow)``; the neighbor
list is rebuilt inside from ``R`` with the capacities the metadata states,
and ``overflow`` is True when some capacity was too small (pairs missing).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ArtifactError",
    "ArtifactVersionError",
    "CapacityOverflowError",
    "ExportedPotential",
    "Evaluation",
    "load",
    "read_metadata",
]

#: Name and version of the artifact layout; :func:`load` refuses any other.
FORMAT = "cgjax.export.potential"
FORMAT_VERSION = 1


class ArtifactError(ValueError):
    """A file is not a readable cgjax potential artifact, or an input does not fit it."""


class ArtifactVersionError(ArtifactError):
    """An artifact was written in another format version than this loader reads."""


class CapacityOverflowError(RuntimeError):
    """The neighbor list built inside the artifact ran out of capacity (pairs missing)."""


class Evaluation(NamedTuple):
    """One evaluation: ``energy`` (kJ/mol), ``forces`` ``[N, 3]`` (kJ/mol/nm), ``overflow``."""

    energy: jax.Array
    forces: jax.Array
    overflow: jax.Array


class ExportedPotential:
    """A loaded artifact: call it on positions ``R [N, 3]`` (nm).

    Attributes:
      metadata: the artifact's metadata (format, versions, units, N, species,
        box, cutoff, neighbor-list capacities, dtype).
      exported: the ``jax.export.Exported``.
    """

    def __init__(self, exported: Any, metadata: dict):
        self.exported = exported
        self.metadata = metadata
        self._call = jax.jit(exported.call)

    def __call__(self, R: Any) -> Evaluation:
        """``Evaluation(energy, forces, overflow)`` at ``R`` (nm), ``[N, 3]`` of the
        artifact's dtype; jit-able.

        Raises:
          ArtifactError: on positions of another shape or dtype than exported.
        """
        shape = (int(self.metadata["n_particles"]), 3)
        dtype = np.dtype(self.metadata["dtype"])
        if tuple(np.shape(R)) != shape or np.dtype(getattr(R, "dtype", None)) != dtype:
            raise ArtifactError(
                f"positions must be {shape} {dtype} (nm) for this artifact, got "
                f"{tuple(np.shape(R))} {getattr(R, 'dtype', type(R).__name__)}"
            )
        return Evaluation(*self._call(R))

    def energy_and_forces(self, R: Any) -> tuple[jax.Array, jax.Array]:
        """``(energy, forces)`` at concrete ``R`` (nm), checking the neighbor list on the host.

        Raises:
          CapacityOverflowError: when the list built inside overflowed.
        """
        out = self(R)
        if bool(out.overflow):
            nl = self.metadata.get("neighbor_list", {})
            raise CapacityOverflowError(
                f"the neighbor list inside the artifact overflowed (capacities {nl}); "
                "export again from denser configurations or with a larger capacity_multiplier"
            )
        return out.energy, out.forces


def read_metadata(path: Any) -> dict:
    """The metadata of an artifact, checked for format and version.

    Raises:
      ArtifactError: naming the file when it is no cgjax artifact.
      ArtifactVersionError: when its format version is not :data:`FORMAT_VERSION`.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as e:
        raise ArtifactError(f"{path}: not a cgjax potential artifact ({e})") from e
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{path}: metadata format is {meta.get('format')!r}, not {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{path}: artifact format version {meta.get('format_version')!r} (written by cgjax "
            f"{meta.get('cgjax_version')}); this loader reads version {FORMAT_VERSION} only: "
            "export the potential again with this cgjax"
        )
    return meta


def load(path: Any) -> ExportedPotential:
    """Loads an artifact written by ``cgjax.export.export_potential``.

    Args:
      path: the artifact file.

    Returns:
      The :class:`ExportedPotential`.

    Raises:
      ArtifactError, ArtifactVersionError: see :func:`read_metadata`.
    """
    meta = read_metadata(path)
    with zipfile.ZipFile(os.fspath(path)) as z:
        blob = z.read("exported.bin")
    return ExportedPotential(jax.export.deserialize(bytearray(blob)), meta)
