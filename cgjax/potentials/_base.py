"""The term protocol: every energy term is a flax linen module of a Graph.

A term maps a :class:`~cgjax.potentials.Graph` to a scalar energy (kJ/mol).
Terms add: ``LennardJones(...) + HighFrequency(...)`` is a :class:`Sum` whose
parameters sit under each term's name (``{"lj": {...}, "hf": {...}}``), so a
trainer selects or freezes them by name.

Pair terms subclass :class:`PairTerm` and write only their per-edge kernel
and parameter declarations; cutoff switching, species lookup, padding masks
and the double-counting factor live here once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from cgjax.potentials._cutoff import check_cutoff, smooth_switch
from cgjax.potentials._graph import Graph
from cgjax.potentials._species import lookup_pair, pair_table

__all__ = ["PairTerm", "Sum", "Term", "sum_of"]


class Term(nn.Module):
    """Base class of energy terms (flax linen modules ``Graph -> kJ/mol``).

    Subclasses set ``default_name`` (the key of their parameters inside a
    :class:`Sum`) and implement ``__call__(graph) -> scalar``.
    """

    default_name: ClassVar[str] = "term"

    def max_cutoff(self) -> float | None:
        """The interaction range (nm) a neighbor list must cover, or None."""
        return getattr(self, "cutoff", None)

    def species_count(self) -> int | None:
        """Number of species this term knows (None: any)."""
        return getattr(self, "n_species", None)

    def needs_directed_edges(self) -> bool:
        """True when the term reads both directions of every edge (message passing).

        Terms that only sum over pairs return False; when every term of a
        potential does, the adapter enumerates each pair once, halving the work.
        """
        return True

    # Topology hooks, used to tile a system or relabel its particles. Terms
    # without a fixed topology are unchanged by either.
    def replicated(self, n_copies: int, n_particles: int) -> Term:
        """The term for ``n_copies`` images of an ``n_particles`` system, stacked."""
        del n_copies, n_particles
        return self

    def permuted(self, perm: Any) -> Term:
        """The term after particles are reordered as ``R_new = R[perm]``."""
        del perm
        return self

    def __add__(self, other: Any) -> Sum:
        return sum_of(self, other)

    def __radd__(self, other: Any) -> Term:
        if isinstance(other, int) and other == 0:  # so builtins.sum works
            return self
        return sum_of(other, self)


class Sum(Term):
    """A sum of named terms; parameters are ``{name: term_params}``.

    Build it with ``a + b`` (default names) or :func:`sum_of` (explicit names).

    Attributes:
      terms: ``((name, term), ...)``.
    """

    terms: tuple[tuple[str, Term], ...] = ()
    default_name: ClassVar[str] = "sum"

    def max_cutoff(self) -> float | None:
        cutoffs = [c for _, t in self.terms if (c := t.max_cutoff()) is not None]
        return max(cutoffs) if cutoffs else None

    def species_count(self) -> int | None:
        counts = [c for _, t in self.terms if (c := t.species_count()) is not None]
        return min(counts) if counts else None

    def needs_directed_edges(self) -> bool:
        return any(t.needs_directed_edges() for _, t in self.terms)

    def replicated(self, n_copies: int, n_particles: int) -> Sum:
        return Sum(
            terms=tuple((k, t.replicated(n_copies, n_particles)) for k, t in self.terms),
            parent=None,
        )

    def permuted(self, perm: Any) -> Sum:
        return Sum(terms=tuple((k, t.permuted(perm)) for k, t in self.terms), parent=None)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        total = 0.0
        for name, term in self.terms:
            total = total + term.clone(parent=self, name=name)(graph, **kwargs)
        return total


def sum_of(*terms: Term, **named_terms: Term) -> Sum:
    """Sums terms; positional ones are named by ``default_name``.

    ``sum_of(LennardJones(), gnn=GNN())`` has parameters ``{"lj", "gnn"}``.

    Raises:
      ValueError: on two terms with the same name, or a non-term argument.
    """
    items: list[tuple[str, Term]] = []
    for t in terms:
        if isinstance(t, Sum):
            items.extend(t.terms)
        elif isinstance(t, Term):
            items.append((t.default_name, t))
        else:
            raise ValueError(f"can only add cgjax potential terms, got {type(t).__name__}")
    for k, t in named_terms.items():
        if not isinstance(t, Term):
            raise ValueError(f"term {k!r} is not a cgjax potential term: {type(t).__name__}")
        items.append((k, t))
    names = [k for k, _ in items]
    dupes = sorted({k for k in names if names.count(k) > 1})
    if dupes:
        raise ValueError(
            f"two terms share the name(s) {dupes}; name them explicitly, e.g. "
            f"sum_of({dupes[0]}_a=..., {dupes[0]}_b=...)"
        )
    return Sum(terms=tuple(items), parent=None)


class PairTerm(Term):
    """A pair potential ``sum_{i<j} u(r_ij) S(r_ij)`` with per-species-pair parameters.

    Subclasses list their parameters in ``pair_parameters`` (name -> (field,
    mixing rule)) and implement ``kernel(r, **params)`` returning per-edge
    energies (kJ/mol) from distances ``r`` (nm) and per-edge parameters.

    Attributes:
      n_species: number of species ``S``.
      cutoff: where the energy reaches zero (nm).
      r_onset: where smooth switching starts (nm); default ``0.9 * cutoff``.
      param_dtype: dtype of the trainable parameters.
    """

    n_species: int = 1
    cutoff: float = 1.0
    r_onset: float | None = None
    param_dtype: Any = jnp.float32

    # name -> (initial-value field, mixing rule for per-species vectors)
    pair_parameters: ClassVar[dict[str, tuple[str, str]]] = {}

    def needs_directed_edges(self) -> bool:
        return False

    @property
    def onset(self) -> float:
        return 0.9 * self.cutoff if self.r_onset is None else self.r_onset

    def kernel(self, r: jax.Array, **params: jax.Array) -> jax.Array:
        raise NotImplementedError

    def tables(self) -> dict[str, jax.Array]:
        """Declares and returns the ``[S, S]`` parameter tables."""
        out = {}
        for pname, (field, mixing) in self.pair_parameters.items():
            init = pair_table(
                getattr(self, field),
                self.n_species,
                name=f"{type(self).__name__}.{field}",
                mixing=mixing,
            )
            out[pname] = self.param(pname, lambda _, v=init: jnp.asarray(v, self.param_dtype))
        return out

    def switch(self, r: jax.Array) -> jax.Array:
        """The cutoff switch ``S(r)`` that multiplies the kernel.

        :func:`smooth_switch` from ``onset`` to ``cutoff``. A term whose kernel
        already vanishes with two derivatives at the cutoff (a spline whose
        basis ends there) overrides this to return 1.
        """
        return smooth_switch(r, self.onset, self.cutoff)

    def active_pairs(self) -> Any:
        """``[S, S]`` bool table of the species pairs this term acts on, or None (all)."""
        return None

    def _edge_energy(self, params, r, si, sj, valid):
        """Switched per-edge energies; ``valid`` marks real edges."""
        p = {k: (lookup_pair(v, si, sj) if jnp.ndim(v) >= 2 else v) for k, v in params.items()}
        inside = valid & (r < self.cutoff)
        active = self.active_pairs()
        if active is not None:
            inside = inside & jnp.asarray(active)[si, sj]
        # Distances outside the cutoff are replaced before the kernel so that
        # no branch produces inf/NaN that would poison gradients.
        r_safe = jnp.where(inside, r, self.cutoff)
        e = self.kernel(r_safe, **p) * self.switch(r_safe)
        return jnp.where(inside, e, 0.0)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        check_cutoff(self.onset, self.cutoff, type(self).__name__)
        si, sj = graph.edge_species()
        e = self._edge_energy(self.tables(), graph.edge_lengths, si, sj, graph.edge_mask)
        # A directed graph holds every pair twice.
        return (0.5 if graph.directed else 1.0) * jnp.sum(e)

    def pair_energy(self, params: dict, r: Any, si: int = 0, sj: int = 0) -> jax.Array:
        """Switched pair energy ``u(r) S(r)`` (kJ/mol) for species ``si, sj`` at ``r`` (nm).

        For plots and closed-form tests; ``params`` is this term's parameter
        dict (e.g. ``params["lj"]``), ``r`` any shape.
        """
        r = jnp.asarray(r)
        s_i = jnp.full(r.shape, si, jnp.int32)
        s_j = jnp.full(r.shape, sj, jnp.int32)
        return self._edge_energy(params, r, s_i, s_j, jnp.ones(r.shape, bool))
