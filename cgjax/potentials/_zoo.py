"""The model zoo by config name: ``potentials.build("deeppot", overrides, cutoff=0.6)``."""

from __future__ import annotations

from typing import Any

from cgjax.potentials._allegro import Allegro
from cgjax.potentials._base import Term
from cgjax.potentials._deeppot import DeepPotSE
from cgjax.potentials._gnn import GNN
from cgjax.potentials._hipnn import HIPNN, StateAwareHIPNN
from cgjax.potentials._lennard_jones import LennardJones
from cgjax.potentials._nequip import NequIP
from cgjax.potentials._schnet import SchNet
from cgjax.potentials._spline import SplinePair

__all__ = ["MODELS", "build"]

#: The model zoo by config name.
MODELS: dict[str, type] = {
    "deeppot": DeepPotSE,
    "allegro": Allegro,
    "nequip": NequIP,
    "gnn": GNN,
    "schnet": SchNet,
    "hipnn": HIPNN,
    "hipnn_state": StateAwareHIPNN,
    "lj": LennardJones,
    "spline": SplinePair,
}


def build(name: str, overrides: Any = None, **fixed: Any) -> Term:
    """A model of the zoo from its config name, the paper defaults and ``overrides``.

    Args:
      name: a key of :data:`MODELS` (``"deeppot"``, ``"allegro"``, ...).
      overrides: a dict/ConfigDict of constructor fields replacing the class's
        ``default_config()`` (the paper's hyperparameters) where it has one;
        lengths in nm, energies in kJ/mol, as the class's fields.
      **fixed: fields set last (e.g. ``cutoff=0.6`` nm, ``n_species=1``).

    Raises:
      ValueError: naming the model or the field when either does not exist.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the zoo has {sorted(MODELS)}")
    cls = MODELS[name]
    defaults = getattr(cls, "default_config", None)
    kwargs = dict(defaults()) if callable(defaults) else {}
    if overrides is not None:
        kwargs.update(dict(overrides))
    kwargs.update(fixed)
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    unknown = sorted(k for k in kwargs if k not in fields)
    if unknown:
        raise ValueError(
            f"model {name!r} ({cls.__name__}) has no field(s) {unknown}; its fields are "
            f"{sorted(f for f in fields if f not in ('parent', 'name'))}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return cls(**kwargs)
