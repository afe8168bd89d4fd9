"""HIP-NN with tensor sensitivity (HIP-NN-TS, order l <= 2), as used for CG fluids in paper 003.

Beads start from one-hot species features. Each interaction block is an
interaction layer (messages weighted by sensitivity functions ``s_nu(r)`` of
the distance, plus a self term) followed by on-site layers. Tensor
sensitivity adds, per output feature, the norms of the vector (l = 1) and
traceless quadrupole (l = 2) sums of the same weighted messages, so neurons
see angular (many-body) information while staying invariant. The energy is
hierarchical: a linear read-out of the input features and of every block's
output, summed over beads.

References:
  Paper 003, "Model architecture" (HIP-NN-TS, l = 2, its refs. 48-49): Lubbers,
  Smith and Barros, J. Chem. Phys. 148, 241715 (2018); Chigaev et al.,
  J. Chem. Phys. 158, 184108 (2023); the ``hippynn`` reference code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from cgjax.potentials._base import Term
from cgjax.potentials._cutoff import check_cutoff, smooth_switch
from cgjax.potentials._graph import Graph

__all__ = [
    "HIPNN",
    "InteractionBlock",
    "StateAwareHIPNN",
    "StateMissingError",
    "TensorInteraction",
    "default_config",
]


def default_config() -> ml_collections.ConfigDict:
    """Paper 003's CG models: l = 2, one interaction and 3 atom layers, 20 sensitivities, 12 Å.

    The paper's beads are one per molecule (one species). The sensitivity
    range, ``cusp_reg``, ``resnet`` and the activation are not given in the
    paper: ``sensitivity_min/max`` are ours for CG beads (0.25-1.0 nm), the
    rest are ``hippynn``'s defaults. Keys equal the :class:`HIPNN` fields.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=1,
            n_features=32,
            n_interactions=1,
            n_atom_layers=3,
            n_sensitivities=20,
            sensitivity_min=0.25,
            sensitivity_max=1.0,
            cutoff=1.2,
            tensor_order=2,
            cusp_reg=1e-6,
            resnet=True,
            param_dtype=jnp.float32,
        )
    )


def _traceless_outer(u: jax.Array) -> jax.Array:
    """``u u^T - |u|^2 I / 3`` flattened, ``[E, 3] -> [E, 9]``."""
    outer = u[:, :, None] * u[:, None, :]
    trace = jnp.sum(u * u, axis=-1)[:, None, None] / 3.0
    return (outer - trace * jnp.eye(3, dtype=u.dtype)).reshape(u.shape[0], 9)


class TensorInteraction(nn.Module):
    """Interaction layer of HIP-NN-TS (pre-activation).

    With sensitivities ``s_nu(r) = exp(-(1/r - 1/mu_nu)^2 sigma_nu^2 / 2) S(r)``
    (``mu``, ``sigma`` in nm, trainable; ``S`` the cutoff switch) and
    ``m_ij = sum_{nu, a} s_nu(r_ij) V_{nu a b} z_ja`` (the same weights ``V``
    for every order), the output feature ``b`` of bead ``i`` is

    ``sum_j m_ij + v_b sqrt(|sum_j m_ij r^_ij|^2 + c) + q_b sqrt(|sum_j m_ij Q_ij|^2 + c)
    + (W z_i + w0)_b``

    with ``r^_ij`` the unit vector to ``j``, ``Q_ij = r^ r^^T - I/3`` and
    ``|.|`` the Euclidean / Frobenius norm; the ``v`` term is present for
    ``tensor_order >= 1``, the ``q`` term for ``tensor_order >= 2``.

    Parameters: ``mu [nu]``, ``sigma [nu]``, ``int_weights [nu, F_in, F]``,
    ``selfint`` (dense ``W``, ``w0``), ``vecscales [F]``, ``quadscales [F]``.

    Attributes:
      n_features: output width ``F``.
      n_sensitivities: number ``nu`` of sensitivity functions.
      sensitivity_min, sensitivity_max: initial ``mu`` range (nm), evenly
        spaced in ``1/r``.
      cutoff: where the sensitivities reach zero (nm).
      tensor_order: highest order ``l`` (0, 1 or 2).
      cusp_reg: ``c``, keeps the norms differentiable at zero.
      param_dtype: dtype of the weights.
    """

    n_features: int
    n_sensitivities: int
    sensitivity_min: float
    sensitivity_max: float
    cutoff: float
    tensor_order: int = 2
    cusp_reg: float = 1e-6
    param_dtype: Any = jnp.float32

    def sensitivities(self, r: jax.Array, inside: jax.Array) -> jax.Array:
        """``[E]`` distances (nm) -> ``[E, nu]`` sensitivities, zero outside."""
        n, lo, hi = self.n_sensitivities, self.sensitivity_min, self.sensitivity_max
        mu = self.param(
            "mu", lambda _: jnp.asarray(1.0 / jnp.linspace(1.0 / hi, 1.0 / lo, n), self.param_dtype)
        )
        # hippynn's initial width, in 1/nm of inverse distance: 1 / (2 nu r_min)
        sigma = self.param("sigma", lambda _: jnp.full((n,), 2.0 * n * lo, self.param_dtype))
        r_safe = jnp.where(inside, r, self.cutoff)
        x = (1.0 / r_safe[:, None] - 1.0 / mu) * sigma
        s = jnp.exp(-0.5 * x * x) * smooth_switch(r_safe, 0.0, self.cutoff)[:, None]
        return jnp.where(inside[:, None], s, 0.0)

    @nn.compact
    def __call__(self, z: jax.Array, graph: Graph) -> jax.Array:
        """``z [N, F_in]`` -> ``[N, F]`` (before the activation)."""
        if self.tensor_order not in (0, 1, 2):
            raise ValueError(f"HIPNN: tensor_order must be 0, 1 or 2, got {self.tensor_order}")
        r = graph.edge_lengths
        inside = graph.edge_mask & (r < self.cutoff)
        s = self.sensitivities(r, inside)  # [E, nu]
        init = nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2)
        v = self.param(
            "int_weights",
            init,
            (self.n_sensitivities, z.shape[-1], self.n_features),
            self.param_dtype,
        )
        # V before the sum over neighbours: [N, nu, F] per bead, not [E, nu, F_in] per edge.
        vz = jnp.einsum("na,vab->nvb", z, v)
        messages = jnp.einsum("ev,evb->eb", s, vz[graph.senders])  # [E, F]
        unit = (
            jnp.where(inside[:, None], graph.edge_vectors, 0.0)
            / jnp.where(inside, r, self.cutoff)[:, None]
        )
        parts = [jnp.ones_like(r)[:, None], unit, _traceless_outer(unit)]
        angular = jnp.concatenate(parts[: self.tensor_order + 1], axis=-1)  # [E, 1 | 4 | 13]
        env = graph.aggregate(angular[:, :, None] * messages[:, None, :])  # [N, C, F]
        out = env[:, 0] + nn.Dense(self.n_features, param_dtype=self.param_dtype, name="selfint")(z)
        scales = nn.initializers.normal(1.0)
        if self.tensor_order >= 1:
            vec = self.param("vecscales", scales, (self.n_features,), self.param_dtype)
            out = out + vec * jnp.sqrt(jnp.sum(env[:, 1:4] ** 2, axis=1) + self.cusp_reg)
        if self.tensor_order >= 2:
            quad = self.param("quadscales", scales, (self.n_features,), self.param_dtype)
            out = out + quad * jnp.sqrt(jnp.sum(env[:, 4:13] ** 2, axis=1) + self.cusp_reg)
        return out


class InteractionBlock(nn.Module):
    """An interaction layer and ``n_atom_layers`` on-site dense layers, each activated.

    With ``resnet`` every layer ``f`` becomes ``x -> A x + res(softplus(f(x)))``
    (``A`` a bias-free dense ``adjust`` layer where the width changes, else the
    identity), as ``hippynn``'s ``ResNetWrapper``; without it, ``softplus(f(x))``.

    Parameters: ``interaction`` (:class:`TensorInteraction`), ``interaction_res``,
    ``interaction_adjust``, ``atom_k``, ``atom_k_res`` (dense).

    Attributes:
      layer: the :class:`TensorInteraction` settings (its ``name`` is ignored).
      n_atom_layers: number of on-site layers after it.
      resnet: residual form of every layer.
    """

    layer: TensorInteraction
    n_atom_layers: int
    resnet: bool = True

    @nn.compact
    def __call__(self, z: jax.Array, graph: Graph, cond: jax.Array | None = None) -> jax.Array:
        """``z [N, F_in]`` -> ``[N, F]``.

        ``cond`` (``[N, C]`` or None): extra inputs appended to the input of
        every on-site layer ``atom_k`` (its kernel gains ``C`` rows, the last
        ones); :class:`StateAwareHIPNN` passes the scaled state point here.
        """
        width, dtype = self.layer.n_features, self.layer.param_dtype

        def wrap(pre: jax.Array, x: jax.Array, name: str) -> jax.Array:
            if not self.resnet:
                return jax.nn.softplus(pre)
            res = nn.Dense(width, param_dtype=dtype, name=f"{name}_res")(jax.nn.softplus(pre))
            if x.shape[-1] != width:
                x = nn.Dense(width, use_bias=False, param_dtype=dtype, name=f"{name}_adjust")(x)
            return x + res

        z = wrap(self.layer.clone(parent=self, name="interaction")(z, graph), z, "interaction")
        for k in range(self.n_atom_layers):
            x = z if cond is None else jnp.concatenate([z, cond], axis=-1)
            pre = nn.Dense(width, param_dtype=dtype, name=f"atom_{k}")(x)
            z = wrap(pre, z, f"atom_{k}")
        return z


class HIPNN(Term):
    """Hierarchically interacting particle neural network with tensor sensitivity.

    ``U = sum_{n=0}^{n_int} sum_i e^n_i`` (kJ/mol): ``e^0_i = w_0 . z^0_i`` reads
    the one-hot species ``z^0_i`` (``[S]``, no bias: a per-species energy) and
    ``e^n_i = w_n . z^n_i + b_n`` the ``[F]`` output of interaction block ``n``
    (:class:`InteractionBlock`, built on :class:`TensorInteraction`). Later
    blocks see farther (``n * cutoff``) and are meant to add smaller
    corrections. The block energies ``[n_int + 1]`` are sown as
    ``intermediates`` ``"block_energies"``.

    Parameters: ``{"block_k": {...}, "energy_0": {"kernel": [S, 1]},
    "energy_k": {"kernel": [F, 1], "bias": [1]}}``.

    Choices that are not from the papers: the cutoff switch is the C2
    polynomial of :func:`~cgjax.potentials.smooth_switch` on ``[0, cutoff]``
    instead of hippynn's ``cos^2(pi r / 2 r_c)`` (C1 only: the derivative of
    the force would jump), the l = 2 norm is taken over the full 3 x 3
    traceless tensor (the same number as hippynn's 5-component form), and the
    weights start LeCun-normal (hippynn: Xavier).

    Attributes:
      n_species: number ``S`` of bead types (width of the one-hot input).
      n_features: width ``F`` of every layer.
      n_interactions: number of interaction blocks ``n_int``.
      n_atom_layers: on-site layers per block.
      n_sensitivities: sensitivity functions ``nu`` per interaction layer.
      sensitivity_min, sensitivity_max: initial sensitivity centres (nm).
      cutoff: interaction range (nm); energy and force go to zero smoothly there.
      tensor_order: ``l``: 0 (HIP-NN), 1 or 2 (HIP-NN-TS).
      cusp_reg: regulariser inside the tensor norms.
      resnet: residual layers (hippynn's default).
      param_dtype: dtype of the weights.

    References:
      Paper 003, "Model architecture" (l = 2, n_int = 1, n_atom = 3, n_nu = 20,
      32 features, 12 Å); Lubbers et al., J. Chem. Phys. 148, 241715 (2018);
      Chigaev et al., J. Chem. Phys. 158, 184108 (2023).
    """

    n_species: int = 1
    n_features: int = 32
    n_interactions: int = 1
    n_atom_layers: int = 3
    n_sensitivities: int = 20
    sensitivity_min: float = 0.25
    sensitivity_max: float = 1.0
    cutoff: float = 1.2
    tensor_order: int = 2
    cusp_reg: float = 1e-6
    resnet: bool = True
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "hipnn"
    default_config: ClassVar = staticmethod(default_config)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        return self._energy(graph, None)

    def _energy(
        self, graph: Graph, cond: jax.Array | None, readout: jax.Array | None = None
    ) -> jax.Array:
        """The energy (kJ/mol).

        ``cond`` ``[C]`` (or None) joins every bead's inputs; ``readout`` ``[C]``
        (or None) multiplies extra bias-free per-block readouts ``state_energy_k``
        (``[F, C]``, zero at initialisation): ``sum_i sum_c readout_c v_{k,c} . z^k_i``
        is added to each block's energy.
        """
        check_cutoff(0.0, self.cutoff, type(self).__name__)
        if not 0 < self.sensitivity_min < self.sensitivity_max:
            raise ValueError(
                f"{type(self).__name__}: need 0 < sensitivity_min < sensitivity_max (nm), got "
                f"{self.sensitivity_min}, {self.sensitivity_max}"
            )
        dtype = self.param_dtype
        z = jax.nn.one_hot(graph.species, self.n_species, dtype=graph.positions.dtype)
        energies = [jnp.sum(nn.Dense(1, use_bias=False, param_dtype=dtype, name="energy_0")(z))]
        per_bead = None
        if cond is not None:
            per_bead = jnp.broadcast_to(cond, (z.shape[0], cond.shape[-1])).astype(z.dtype)
            z = jnp.concatenate([z, per_bead], axis=-1)
        layer = TensorInteraction(
            self.n_features,
            self.n_sensitivities,
            self.sensitivity_min,
            self.sensitivity_max,
            self.cutoff,
            self.tensor_order,
            self.cusp_reg,
            dtype,
            parent=None,
        )
        for n in range(1, self.n_interactions + 1):
            z = InteractionBlock(layer, self.n_atom_layers, self.resnet, name=f"block_{n}")(
                z, graph, per_bead
            )
            e_n = jnp.sum(nn.Dense(1, param_dtype=dtype, name=f"energy_{n}")(z))
            if readout is not None:
                v = nn.Dense(readout.shape[-1], use_bias=False, param_dtype=dtype,
                             kernel_init=nn.initializers.zeros,
                             name=f"state_energy_{n}")(z)  # fmt: skip
                e_n = e_n + jnp.sum(v * readout.astype(v.dtype))
            energies.append(e_n)
        energies = jnp.stack(energies)
        self.sow("intermediates", "block_energies", energies)
        return jnp.sum(energies)


class StateMissingError(ValueError):
    """A state-aware potential was called without a state point (and has none bound)."""


def state_aware_config() -> ml_collections.ConfigDict:
    """:func:`default_config` plus the state scaling of :class:`StateAwareHIPNN`."""
    c = default_config()
    c.state_center = (300.0, 0.8)
    c.state_width = (100.0, 0.2)
    c.state_point = None
    c.conditioning = "readout"
    return c


class StateAwareHIPNN(HIPNN):
    """HIP-NN-TS conditioned on the thermodynamic state point ``(T, rho)``.

    One set of parameters gives a different CG potential of mean force at
    each state point (the CG free energy depends on T and rho; paper 003's
    multi-state model ignores that), through the scaled state point
    ``s = ((T - T_c) / T_w, (rho - rho_c) / rho_w)``. Two ways (``conditioning``):

    - ``"readout"`` (the default): the energy is linear in ``s``,
      ``U(R; s) = U_0(R) + s_T U_T(R) + s_rho U_rho(R)``, the three sharing one
      HIP-NN-TS's features ``z^k_i``: ``U_c = sum_k sum_i v_{k,c} . z^k_i``
      (``state_energy_k``, zero at initialisation, so training starts from a
      plain :class:`HIPNN`). The first-order expansion of the potential of
      mean force in the state point (``W(R; T) ~ U(R) - T S(R)``: the
      energy-entropy split of the PMF); midway between two training states the
      model is their average: low capacity in the state, meant to interpolate.
    - ``"inputs"``: every bead's input features and the input of every
      on-site (atom) layer carry ``s`` (the state enters every layer).

    Either way the state enters only through ``s``: with the weights that
    read ``s`` set to zero the model is a :class:`HIPNN` with the remaining
    weights. ``energy_0`` reads the species only.

    Parameters: those of :class:`HIPNN`; ``"readout"`` adds ``state_energy_k``
    (``{"kernel": [F, 2]}``) per block; with ``"inputs"``, ``block_k.interaction``
    (``int_weights`` ``[nu, S + 2, F]``, ``selfint``) and
    ``block_k.interaction_adjust`` have 2 more input rows (the last) and every
    ``block_k.atom_j`` kernel has 2 more rows (the last).

    The state point comes per call, ``energy(R, state=[T, rho])`` (``[2]``:
    K and g/cm^3; batched ``[B, 2]`` through
    :func:`~cgjax.losses.predict_forces` and the force-matching batches'
    ``"state"`` key), or is bound with :meth:`at_state` for simulation, where
    the integrators call the energy without it. A per-call state wins.

    Attributes (besides :class:`HIPNN`'s):
      state_center: ``(T_c, rho_c)`` (K, g/cm^3) subtracted from the state.
      state_width: ``(T_w, rho_w)`` (K, g/cm^3) the state is divided by.
      state_point: ``(T, rho)`` (K, g/cm^3) used when a call gives none, or None.
      conditioning: ``"readout"`` or ``"inputs"`` (above).

    Raises:
      StateMissingError: on a call (other than ``init``) without a state point
        while none is bound; ValueError: a state that is not ``[2]``, or a
        non-positive width, or an unknown ``conditioning``.
    """

    state_center: tuple[float, float] = (300.0, 0.8)
    state_width: tuple[float, float] = (100.0, 0.2)
    state_point: tuple[float, float] | None = None
    conditioning: str = "readout"
    default_name: ClassVar[str] = "hipnn_state"
    default_config: ClassVar = staticmethod(state_aware_config)

    def at_state(self, temperature: float, density: float) -> StateAwareHIPNN:
        """This model with the state point bound: ``temperature`` (K), ``density`` (g/cm^3)."""
        return self.clone(parent=None, state_point=(float(temperature), float(density)))

    @nn.compact
    def __call__(self, graph: Graph, *, state: Any = None, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) at ``state`` ``[2]`` = (T in K, rho in g/cm^3)."""
        del kwargs
        if state is None and self.state_point is not None:
            state = self.state_point
        if state is None:
            if not self.is_initializing():
                raise StateMissingError(
                    "StateAwareHIPNN: no state point; call energy(R, state=[T (K), rho "
                    "(g/cm^3)]) or bind one with .at_state(T, rho) (e.g. for simulation)"
                )
            state = self.state_center  # initialisation does not depend on its value
        state = jnp.asarray(state, graph.positions.dtype)
        if state.shape != (2,):
            raise ValueError(
                f"StateAwareHIPNN: state must be [2] = (T in K, rho in g/cm^3) per frame, got "
                f"shape {list(state.shape)}"
            )
        width = jnp.asarray(self.state_width, state.dtype)
        if not all(float(w) > 0 for w in self.state_width):
            raise ValueError(f"StateAwareHIPNN: state_width must be positive, got "
                             f"{self.state_width}")  # fmt: skip
        s = (state - jnp.asarray(self.state_center, state.dtype)) / width
        if self.conditioning == "readout":
            return self._energy(graph, None, s)
        if self.conditioning == "inputs":
            return self._energy(graph, s)
        raise ValueError(f"StateAwareHIPNN: conditioning must be 'readout' or 'inputs', got "
                         f"{self.conditioning!r}")  # fmt: skip
