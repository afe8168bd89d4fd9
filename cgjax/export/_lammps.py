"""LAMMPS ``pair_style table`` files of a :class:`PairTable`, and their reader.

One file, one section per species pair (keyword ``CG_<i>_<j>``; LAMMPS atom
types are 1-based, type ``i + 1`` is cgjax species ``i``)::

    CG_0_0
    N 1500 R 2.5 11.24

    1 2.5 <energy> <force>
    ...

with ``force = -dE/dr``. Units are converted from cgjax's (nm, kJ/mol) to
LAMMPS ``real`` (Å, kcal/mol, kcal/mol/Å) or ``metal`` (Å, eV, eV/Å). The
table starts at ``r_min`` (LAMMPS stops with "Pair distance < table inner
cutoff" below it) and ends at the cutoff, which ``pair_coeff`` repeats; the
header comment gives the ``units``, ``pair_style`` and ``pair_coeff`` lines.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cgjax import units
from cgjax.export._table import PairTable

__all__ = ["LAMMPS_UNITS", "read_lammps_table", "write_lammps_table"]

#: ``{style: (length, energy)}``: the size of LAMMPS's units in cgjax units
#: (nm, kJ/mol); forces are energy / length.
LAMMPS_UNITS = {
    "real": (units.angstrom, units.kcal_per_mol),
    "metal": (units.angstrom, units.eV),
}


def _check_units(style: str) -> tuple[float, float]:
    if style not in LAMMPS_UNITS:
        raise ValueError(f"LAMMPS units must be one of {sorted(LAMMPS_UNITS)}, got {style!r}")
    return LAMMPS_UNITS[style]


def write_lammps_table(table: PairTable, path: Any, *, units_style: str = "real") -> str:
    """Writes a LAMMPS ``pair_style table`` file (see the module doc for layout and units).

    Args:
      table: the :class:`PairTable` (nm, kJ/mol).
      path: the file to write.
      units_style: ``"real"`` (Å, kcal/mol) or ``"metal"`` (Å, eV).

    Returns:
      The path written.

    Raises:
      ValueError: on another units style.
    """
    length, energy = _check_units(units_style)
    path = os.fspath(path)
    name = os.path.basename(path)
    r = table.r / length
    cut = table.cutoff / length
    n = len(r)
    lines = [
        f"# LAMMPS pair_style table file written by {table.source}",
        f"# units {units_style}: r in Angstrom, energy in "
        f"{'kcal/mol' if units_style == 'real' else 'eV'}, force = -dE/dr in "
        f"{'kcal/mol/Angstrom' if units_style == 'real' else 'eV/Angstrom'}",
        f"# cutoff {cut:.10g} Angstrom; exported range r_min {r[0]:.10g} r_max {r[-1]:.10g} "
        "Angstrom",
        f"# units {units_style}",
        f"# pair_style table linear {n}",
    ]
    lines += [f"# pair_coeff {i + 1} {j + 1} {name} CG_{i}_{j} {cut:.10g}" for i, j in table.pairs]
    for k, (i, j) in enumerate(table.pairs):
        lines += ["", f"CG_{i}_{j}", f"N {n} R {r[0]:.10g} {r[-1]:.10g}", ""]
        e = table.energy[k] / energy
        f = table.force[k] / (energy / length)
        lines += [f"{m + 1} {r[m]:.10e} {e[m]:.10e} {f[m]:.10e}" for m in range(n)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def read_lammps_table(path: Any, *, keyword: str = "CG_0_0") -> PairTable:
    """Reads one section of a LAMMPS table file back into cgjax units (nm, kJ/mol).

    The units style and cutoff come from the header comment written by
    :func:`write_lammps_table`.

    Raises:
      ValueError: naming the file when the keyword, the ``N`` line, the units
        or cutoff header are missing, or the section has fewer rows than ``N``.
    """
    path = os.fspath(path)
    with open(path) as fh:
        lines = [ln.strip() for ln in fh]
    style = cutoff = None
    for ln in lines:
        words = ln.lstrip("#").split()
        if ln.startswith("#") and words[:1] == ["units"] and len(words) == 2:
            style = words[1]
        if ln.startswith("#") and words[:1] == ["cutoff"]:
            cutoff = float(words[1])
    if style is None or cutoff is None or keyword not in lines:
        raise ValueError(
            f"{path}: need '# units <style>' and '# cutoff <r>' header lines and a section "
            f"{keyword!r}"
        )
    length, energy = _check_units(style)
    at = lines.index(keyword)
    head = lines[at + 1].split()
    if head[:1] != ["N"]:
        raise ValueError(f"{path}: section {keyword!r} has no 'N <count> ...' line")
    n = int(head[1])
    rows = [ln.split() for ln in lines[at + 2 :] if ln and not ln.startswith("#")][:n]
    data = np.asarray(rows, np.float64)
    if data.shape != (n, 4):
        raise ValueError(f"{path}: section {keyword!r} needs {n} rows of 4 numbers")
    i, j = (int(s) for s in keyword.split("_")[1:3])
    return PairTable(
        r=data[:, 1] * length,
        energy=(data[:, 2] * energy)[None],
        force=(data[:, 3] * energy / length)[None],
        pairs=((min(i, j), max(i, j)),),
        cutoff=cutoff * length,
        source=f"LAMMPS table {os.path.basename(path)} {keyword}",
    )
