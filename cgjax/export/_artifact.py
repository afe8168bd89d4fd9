"""Any potential as a ``jax.export`` artifact that :func:`~cgjax.export.load` runs.

The exported function is ``R [N, 3] (nm) -> (E (kJ/mol), F [N, 3]
(kJ/mol/nm), overflow)`` with the parameters, species and box baked in as
constants and ``F = -jax.grad(E)``. A cutoff potential needs a neighbor
list, whose shapes must be fixed: it is allocated here from sample
configurations (capacities times ``capacity_multiplier``, stated in the
metadata) and rebuilt inside the function from ``R`` at every call (no skin,
so it needs no state); a call whose pairs do not fit returns
``overflow = True`` instead of a wrong energy silently.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import cgjax
from cgjax._space import box_matrix
from cgjax.export._load import FORMAT, FORMAT_VERSION
from cgjax.potentials import EnergyModel, Sum

__all__ = ["export_potential"]


def _describe(potential: Any) -> list[str]:
    if isinstance(potential, Sum):
        return [f"{name}: {type(t).__name__}" for name, t in potential.terms]
    return [type(potential).__name__]


def export_potential(
    model: EnergyModel,
    params: Any,
    R: Any,
    path: Any,
    *,
    capacity_multiplier: float = 1.5,
    platforms: tuple[str, ...] | None = None,
) -> dict:
    """Writes ``model`` with ``params`` as a ``jax.export`` artifact (a zip file).

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` (species and box fixed).
      params: its parameters (baked into the artifact).
      R: ``[N, 3]`` or ``[T, N, 3]`` positions (nm), concrete: the dtype of the
        exported function's input, and the configurations the neighbor
        list's capacities are sized for.
      path: the file to write (e.g. ``model.cgjax``).
      capacity_multiplier: head-room of the neighbor list's capacities over
        the counts at ``R``.
      platforms: lowering platforms (``("cpu", "cuda")``); default the
        current backend.

    Returns:
      The metadata written beside the function.

    Raises:
      ValueError: on positions that are not ``[N, 3]``/``[T, N, 3]`` for the
        model's ``N``.
    """
    frames = np.asarray(R)
    n = int(model.species.shape[0])
    if frames.ndim not in (2, 3) or frames.shape[-2:] != (n, 3):
        raise ValueError(f"R must be [N, 3] or [T, N, 3] with N = {n} (nm), got {frames.shape}")
    frames = frames.reshape(-1, n, 3)
    energy = model.energy_fn(params)
    nl_meta: dict[str, Any] = {"kind": "none (all pairs of the model's own graph)"}
    if model.cutoff is None:

        def fn(X):
            e, g = jax.value_and_grad(energy)(X)
            return e, -g, jnp.asarray(False)

    else:
        nfn = model.neighbor_fn(skin=0.0, capacity_multiplier=capacity_multiplier)
        nbr = nfn.allocate(frames[0], size_for=frames[1:] if len(frames) > 1 else None)

        def fn(X):
            nb = nfn.rebuild(X, nbr)
            e, g = jax.value_and_grad(lambda x: energy(x, neighbor=nb))(X)
            return e, -g, nb.did_buffer_overflow

        nl_meta = {
            "kind": "rebuilt from R at every call, skin 0",
            "format": nfn.format_name,
            "cell_list": nfn.grid is not None,
            "edge_capacity": int(nbr.idx.shape[-1]),
            "row_capacity": int(nbr.row_capacity),
            "cell_capacity": int(nbr.cell_capacity),
            "capacity_multiplier": float(capacity_multiplier),
        }
    spec = jax.ShapeDtypeStruct((n, 3), frames.dtype)
    exported = jax.export.export(jax.jit(fn), platforms=platforms)(spec)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cgjax_version": cgjax.__version__,
        "jax_version": jax.__version__,
        "units": {"positions": "nm", "energy": "kJ/mol", "forces": "kJ/mol/nm", "box": "nm"},
        "inputs": "R [N, 3] positions (nm)",
        "outputs": "(energy (), forces [N, 3], overflow () bool)",
        "n_particles": n,
        "dtype": str(frames.dtype),
        "species": np.asarray(model.species).tolist(),
        "box": None if model.box is None else box_matrix(model.box).tolist(),
        "cutoff": model.cutoff,
        "neighbor_list": nl_meta,
        "potential": _describe(model.potential),
        "platforms": list(exported.platforms),
    }
    with zipfile.ZipFile(os.fspath(path), "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps(meta, indent=1))
        z.writestr("exported.bin", bytes(exported.serialize()))
    return meta
