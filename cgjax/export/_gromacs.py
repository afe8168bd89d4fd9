"""GROMACS user tables (``table.xvg``) of a :class:`PairTable`, and their reader.

GROMACS user tables list seven columns, ``r f -f' g -g' h -h'`` (nm,
kJ/mol, kJ/mol/nm), and the non-bonded energy of a pair is
``q_i q_j f(r) / (4 pi eps0) + C6 g(r) + C12 h(r)``. The whole pair
potential goes into ``h`` (the repulsion column) and the pair gets
``C6 = 0``, ``C12 = 1`` (the convention VOTCA's tables use); ``f`` and ``g``
are zero. Rows run from ``r = 0`` in steps of the table's spacing, which
GROMACS expects to be 0.002 nm (single precision) or 0.0005 nm (double), to
``cutoff + table_extension``. Below the table's ``r_min`` the energy is
continued linearly with the force at ``r_min`` (constant force, as cgjax's
splines do), beyond the cutoff it is zero; the header states both ranges.

mdp (GROMACS <= 2019, the group scheme that reads user tables)::

    cutoff-scheme = group
    vdwtype = user ; coulombtype = user (with zero charges)
    rvdw = <cutoff> ; rlist = <cutoff>
    table-extension = <table_extension>
    energygrps = S0 S1 ... ; energygrp-table = S0 S0 S0 S1 ... (several species)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cgjax.export._table import PairTable

__all__ = ["GROMACS_SPACING", "read_gromacs_table", "write_gromacs_table"]

#: The table spacing (nm) GROMACS expects, by precision.
GROMACS_SPACING = {"single": 0.002, "double": 0.0005}


def _rows(table: PairTable, k: int, table_extension: float) -> np.ndarray:
    """``[M', 7]`` rows from r = 0 to cutoff + table_extension."""
    dr = table.dr
    k0 = int(round(table.r_min / dr))
    k_end = int(np.ceil((table.cutoff + table_extension) / dr - 1e-9))
    r = np.arange(k_end + 1) * dr
    u = np.zeros_like(r)
    f = np.zeros_like(r)
    below = np.arange(k_end + 1) < k0
    u[below] = table.energy[k, 0] + table.force[k, 0] * (table.r_min - r[below])
    f[below] = table.force[k, 0]
    n = min(len(table.r), k_end + 1 - k0)
    u[k0 : k0 + n] = table.energy[k, :n]
    f[k0 : k0 + n] = table.force[k, :n]
    out = np.zeros((len(r), 7))
    out[:, 0], out[:, 5], out[:, 6] = r, u, f
    return out


def write_gromacs_table(
    table: PairTable,
    path: Any,
    *,
    precision: str = "single",
    table_extension: float = 1.0,
) -> list[str]:
    """Writes GROMACS user tables (nm, kJ/mol, kJ/mol/nm; see the module doc).

    One species: ``path`` itself (``table.xvg``). Several: ``path`` holds a
    zero table (GROMACS reads it for pairs without an energy-group table)
    and each species pair ``(i, j)`` goes to ``<stem>_S<i>_S<j>.xvg`` beside
    it, for energy groups named ``S0``, ``S1``, ...

    Args:
      table: the :class:`PairTable` (its spacing must be GROMACS's).
      path: the ``.xvg`` file to write.
      precision: ``"single"`` (spacing 0.002 nm) or ``"double"`` (0.0005 nm).
      table_extension: the mdp ``table-extension`` (nm): rows reach
        ``cutoff + table_extension``.

    Returns:
      The paths written.

    Raises:
      ValueError: on an unknown precision, or a table spacing other than
        the one GROMACS expects for it (naming both).
    """
    if precision not in GROMACS_SPACING:
        raise ValueError(f"precision must be one of {sorted(GROMACS_SPACING)}, got {precision!r}")
    want = GROMACS_SPACING[precision]
    if abs(table.dr - want) > 1e-9:
        raise ValueError(
            f"GROMACS ({precision} precision) expects a table spacing of {want} nm; this "
            f"table has {table.dr:.6g} nm: build it with pair_table(..., dr={want})"
        )
    if abs(table.r_min / want - round(table.r_min / want)) > 1e-6:
        raise ValueError(
            f"GROMACS table rows are multiples of {want} nm from 0; this table starts at "
            f"r_min = {table.r_min:.10g} nm: build it with an r_min that is a multiple of {want}"
        )
    path = os.fspath(path)
    stem, ext = os.path.splitext(path)
    jobs = []
    if len(table.pairs) == 1:
        jobs.append((path, 0, table.pairs[0]))
    else:
        jobs.append((path, None, None))
        jobs += [(f"{stem}_S{i}_S{j}{ext or '.xvg'}", k, (i, j)) for k, (i, j) in
                 enumerate(table.pairs)]  # fmt: skip
    for file, k, pair in jobs:
        if k is None:
            rows = _rows(table, 0, table_extension)
            rows[:, 1:] = 0.0
            what = "zero table: every species pair has its energy-group table"
        else:
            rows = _rows(table, k, table_extension)
            what = f"species pair S{pair[0]}-S{pair[1]} in columns h, -h' (C6 = 0, C12 = 1)"
        header = [
            f"# GROMACS user table written by {table.source}",
            f"# {what}",
            "# columns: r (nm)  f  -f'  g  -g'  h (kJ/mol)  -h' (kJ/mol/nm)",
            f"# cutoff {table.cutoff:.10g} nm (rvdw); table-extension {table_extension:.10g} nm",
            f"# exported range: r_min {table.r_min:.10g} nm r_max {table.r_max:.10g} nm",
            f"# below r_min: linear continuation (constant force); spacing {table.dr:.10g} nm "
            f"({precision} precision)",
        ]
        np.savetxt(file, rows, fmt="%.10e", header="\n".join(h[2:] for h in header))
    return [j[0] for j in jobs]


def read_gromacs_table(path: Any, *, pair: tuple[int, int] = (0, 0)) -> PairTable:
    """Reads a table written by :func:`write_gromacs_table` back (nm, kJ/mol).

    The potential is ``h`` (column 6) and the force ``-h'`` (column 7); the
    range is the exported one stated in the header (``r_min``) to the last
    row, so the linear continuation below ``r_min`` is not read back.

    Raises:
      ValueError: naming the file when it has no ``exported range`` header
        line or not seven columns.
    """
    path = os.fspath(path)
    r_min = cutoff = None
    with open(path) as f:
        for line in f:
            if not line.startswith(("#", "@")):
                continue
            words = line[1:].split()
            if words[:2] == ["exported", "range:"]:
                r_min = float(words[words.index("r_min") + 1])
            if words[:1] == ["cutoff"]:
                cutoff = float(words[1])
    data = np.loadtxt(path, comments=("#", "@"), ndmin=2)
    if r_min is None or cutoff is None or data.shape[1] != 7:
        raise ValueError(
            f"{path}: not a cgjax GROMACS table (need '# exported range: r_min ...' and "
            f"'# cutoff ...' header lines and 7 columns; got {data.shape[1]} columns)"
        )
    keep = data[:, 0] >= r_min - 1e-9
    return PairTable(
        r=data[keep, 0],
        energy=data[keep, 5][None],
        force=data[keep, 6][None],
        pairs=((min(pair), max(pair)),),
        cutoff=cutoff,
        source=f"GROMACS table {os.path.basename(path)}",
    )
