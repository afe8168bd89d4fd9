"""Lists what STYLE.md item 14 and issue 17 call a missing object or layer.

    python scripts/api_shape.py          # exit status 1 when anything is listed

(a) every public function or method in ``cgjax/`` (name without a leading
``_``, in any module, at module level or in a public class; ``__init__`` and
``__call__`` of a public class count as public) with more than
``MAX_PARAMETERS`` parameters (``self``/``cls`` not counted, ``*args`` and
``**kwargs`` one each) or more than ``MAX_LINES`` lines of code (from ``def``
to its last line, without the docstring, blank lines and comment-only lines);

(b) import cycles between the units of cgjax: its subpackages
(``cgjax.simulate``, ``cgjax.train``, ``cgjax.losses``, ...) and its
top-level modules (``cgjax.run``, ``cgjax.workflow``, ``cgjax._space``, ...).
Every import counts, also one inside a function (a deferred import still
depends on the other unit). ``from cgjax import name`` depends on the unit
``cgjax/__init__.py`` takes ``name`` from.

Read with :mod:`ast` only: nothing of cgjax is imported.
"""

from __future__ import annotations

import ast
import os
import sys

MAX_PARAMETERS = 10
MAX_LINES = 100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC_DUNDERS = ("__init__", "__call__")


def _modules(package_dir: str) -> dict[str, str]:
    """``{dotted module name: file}`` for every ``.py`` under ``package_dir``."""
    base = os.path.dirname(package_dir)
    out = {}
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, base)[: -len(".py")].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = path
    return out


def _code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    skip = set()
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    n = 0
    for i in range(start, fn.end_lineno + 1):
        text = lines[i - 1].strip()
        if i not in skip and text and not text.startswith("#"):
            n += 1
    return n


def _n_parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args]
    if method and names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def _is_public(name: str, method: bool) -> bool:
    return not name.startswith("_") or (method and name in PUBLIC_DUNDERS)


def large_functions(root: str = ROOT) -> list[str]:
    """``"cgjax.mod.fn: N parameters, M lines"`` for each public function over a limit."""
    out = []
    for module, path in _modules(os.path.join(root, "cgjax")).items():
        with open(path) as f:
            source = f.read()
        lines = source.splitlines()
        tree = ast.parse(source, path)
        found = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((node.name, node, False))
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                        found.append((f"{node.name}.{sub.name}", sub, True))
        for name, fn, method in found:
            if not _is_public(fn.name, method):
                continue
            n_par, n_lines = _n_parameters(fn, method), _code_lines(fn, lines)
            why = []
            if n_par > MAX_PARAMETERS:
                why.append(f"{n_par} parameters")
            if n_lines > MAX_LINES:
                why.append(f"{n_lines} lines")
            if why:
                out.append(f"{module}.{name}: {', '.join(why)}")
    return sorted(out)


def _unit(module: str, units: list[str]) -> str:
    """The unit a module belongs to: the longest unit name that is it or a parent."""
    best = "cgjax"
    for u in units:
        if (module == u or module.startswith(u + ".")) and len(u) > len(best):
            best = u
    return best


def _resolve(pkg: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    parts = pkg.split(".")[: len(pkg.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def _imports(module: str, path: str, modules: dict) -> list[tuple[str, int]]:
    """``(imported cgjax module, line)`` for every import in the file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_pkg = os.path.basename(path) == "__init__.py"
    pkg = module if is_pkg else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "cgjax"]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(pkg, node.level, node.module)
            if base.split(".")[0] != "cgjax":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in modules else base, node.lineno))
                if sub not in modules and base == "cgjax":  # a name re-exported by cgjax
                    out[-1] = (_reexport_source(a.name, modules), node.lineno)
    return out


def _reexport_source(name: str, modules: dict) -> str:
    """The module ``cgjax/__init__.py`` takes ``name`` from (``cgjax`` if none)."""
    with open(modules["cgjax"]) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any((a.asname or a.name) == name for a in node.names):
                return node.module
    return "cgjax"


def import_cycles(root: str = ROOT) -> list[str]:
    """One line per cycle of imports between units: ``a -> b -> a`` and where each edge is."""
    modules = _modules(os.path.join(root, "cgjax"))
    units = sorted(
        {m for m in modules if m.count(".") == 1} - {"cgjax"}
    )  # cgjax.train, cgjax.run, cgjax._space, ...
    edges: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        src = _unit(module, units)
        if module == "cgjax":
            continue  # the namespace re-exports everything; its own imports make no layer
        for target, line in _imports(module, path, modules):
            dst = _unit(target, units)
            if dst != src:
                where = f"{os.path.relpath(path, root)}:{line}"
                edges.setdefault(src, {}).setdefault(dst, where)
    out = []
    for comp in _strongly_connected(edges):
        if len(comp) < 2:
            continue
        comp = sorted(comp)
        cycle = _cycle_through(comp[0], set(comp), edges)
        hops = [f"{a} -> {b} ({edges[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        out.append(f"cycle {' -> '.join(cycle)}: " + "; ".join(hops))
    return sorted(out)


def _strongly_connected(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the unit graph."""
    nodes = sorted(set(edges) | {b for d in edges.values() for b in d})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def _cycle_through(start: str, comp: set[str], edges: dict) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one component (BFS)."""
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, {})):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if w in comp and w not in prev:
                prev[w] = v
                queue.append(w)
    return [start, start]


def listing(root: str = ROOT) -> list[str]:
    """Everything :func:`main` prints, one offender per line."""
    return large_functions(root) + import_cycles(root)


def main() -> int:
    found = listing()
    for line in found:
        print(line)
    limits = f"> {MAX_PARAMETERS} parameters or > {MAX_LINES} lines, or import cycles"
    print(f"{len(found)} found ({limits})" if found else f"none ({limits})", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
