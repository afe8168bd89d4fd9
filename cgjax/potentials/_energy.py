"""The one adapter from a potential (flax module) to jax-md energy functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cgjax._neighbor_list import neighbor_list_fn
from cgjax._space import check_box, make_space
from cgjax._types import EnergyFn, Params
from cgjax._validation import check_positions, check_species, is_concrete
from cgjax.potentials._base import Term
from cgjax.potentials._graph import build_graph

__all__ = ["EnergyModel", "energy_model"]


class EnergyModel(NamedTuple):
    """A potential bound to a system: the contract every trainer and simulator uses.

    Attributes:
      init_fn: ``init_fn(key, R, *, neighbor=None) -> params`` (a pytree with
        one entry per term name).
      energy_fn: ``energy_fn(params) -> (R, *, neighbor=None, box=None, **kw) -> E``
        with ``R`` ``[N, 3]`` in nm and ``E`` a scalar in kJ/mol. Forces are
        ``-jax.grad`` of it. ``neighbor`` is a jax-md neighbor list of any
        format (``None``: all pairs); ``box`` an optional per-call ``[3, 3]`` box
        (nm); ``state`` an optional state point ``[2]`` (T in K, rho in g/cm^3)
        handed to every term as ``state=`` (read by
        :class:`~cgjax.potentials.StateAwareHIPNN`, ignored by the others).
        Other keywords (e.g. those jax-md simulators pass) are ignored.
      potential: the flax module.
      species: ``[N]`` int32 species.
      box: the box as given (nm), or ``None`` for free space.
      displacement_fn, shift_fn: the jax-md space.
      system: the :class:`~cgjax.simulate.System` (masses in amu) the model was
        built on (``energy_model(potential, system=...)``), or None: it then
        cannot be simulated, only fitted and evaluated.
    """

    init_fn: Callable[..., Params]
    energy_fn: Callable[[Params], EnergyFn]
    potential: Term
    species: jax.Array
    box: Any
    displacement_fn: Callable
    shift_fn: Callable
    system: Any = None

    @property
    def cutoff(self) -> float | None:
        """The largest cutoff of the potential's terms (nm)."""
        return self.potential.max_cutoff()

    def neighbor_fn(self, *, skin: float = 0.1, format: str = "auto", **kwargs):
        """A jax-md neighbor-list function covering ``cutoff + skin`` (nm).

        Args:
          skin: extra range (nm); no particle may move ``skin / 2`` in one step.
          format: ``"auto"`` (each pair once for pair potentials, both
            directions for message passing), ``"sparse"``, ``"ordered_sparse"``
            or ``"dense"``.
        """
        if self.cutoff is None:
            raise ValueError("this potential has no cutoff, so it needs no neighbor list")
        if format == "auto":
            format = "sparse" if self.potential.needs_directed_edges() else "ordered_sparse"
        return neighbor_list_fn(self.box, self.cutoff, skin=skin, format=format, **kwargs)

    def force_fn(self, params: Params) -> EnergyFn:
        """``F(R, **kw) = -dE/dR`` (kJ/mol/nm), ``[N, 3]``."""
        e = self.energy_fn(params)
        return lambda R, **kw: -jax.grad(e)(R, **kw)


def energy_model(
    potential: Term, *, species: Any = None, box: Any = None, system: Any = None
) -> EnergyModel:
    """Binds a potential to a system: its species and box, and for dynamics its masses.

    Give either ``system`` (a :class:`~cgjax.simulate.System`: species, box,
    masses and space, built once; the model can then be sampled:
    :func:`~cgjax.simulate.sample` and everything built on it take the model
    alone) or ``species`` and ``box`` (enough to fit and evaluate forces).

    Args:
      potential: a :class:`~cgjax.potentials.Term` (or a sum of terms).
      species: ``[N]`` int species indices, each ``< potential`` ``n_species``.
      box: ``None`` (free space), scalar, ``[3]`` or ``[3, 3]`` (columns are the
        box vectors), in nm.
      system: a :class:`~cgjax.simulate.System`, instead of ``species``/``box``.

    Returns:
      The :class:`EnergyModel`.

    Raises:
      ValueError: on a species index out of range, a box narrower than
        twice the potential's cutoff, or both ``system`` and ``species``/``box``.
    """
    if system is not None:
        if species is not None or box is not None:
            raise ValueError(
                "energy_model: give system= or species=/box=, not both (the system holds them)"
            )
        species, box = system.species, system.box
    elif species is None:
        raise ValueError("energy_model needs species= (and box=) or system=")
    if not isinstance(potential, Term):
        raise ValueError(
            f"potential must be a cgjax potential term (flax module), got {type(potential)}"
        )
    species_np = check_species(species, potential.species_count())
    n = species_np.shape[0]
    check_box(box, potential.max_cutoff() or 0.0)
    if system is not None:  # its space, not a second one
        displacement_fn, shift_fn = system.displacement_fn, system.shift_fn
    else:
        displacement_fn, shift_fn = make_space(box)
    species_j = jnp.asarray(species_np)
    directed = potential.needs_directed_edges()

    def graph_of(R, neighbor, call_box):
        check_positions(R, n)
        R = jnp.asarray(R)
        if call_box is not None and is_concrete(call_box):
            check_box(np.asarray(call_box), potential.max_cutoff() or 0.0, name="box (per call)")
        return build_graph(
            R, species_j, displacement_fn, neighbor=neighbor, box=call_box, directed=directed
        )

    def init_fn(key: jax.Array, R: jax.Array, *, neighbor=None, box=None) -> Params:
        return potential.init(key, graph_of(R, neighbor, box)).get("params", {})

    def energy_fn(params: Params) -> EnergyFn:
        def energy(R: jax.Array, *, neighbor=None, box=None, state=None, **unused) -> jax.Array:
            del unused
            kw = {} if state is None else {"state": state}
            return potential.apply({"params": params}, graph_of(R, neighbor, box), **kw)

        return energy

    return EnergyModel(
        init_fn=init_fn,
        energy_fn=energy_fn,
        potential=potential,
        species=species_j,
        box=box,
        displacement_fn=displacement_fn,
        shift_fn=shift_fn,
        system=system,
    )
