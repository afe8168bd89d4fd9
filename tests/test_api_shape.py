"""``scripts/api_shape.py`` as a ratchet: today's offenders are allowed, no new ones.

When a function on the list is fixed, remove it here: the test fails until then,
so the list only shrinks.
"""

import os
import textwrap

import pytest

from cgjax.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
api_shape = load_module(os.path.join(ROOT, "scripts", "api_shape.py"), "cgjax_api_shape")

#: Public functions with > 10 parameters or > 100 lines of code (issue 17), by name.
ALLOWED_LARGE: set[str] = set()
#: Import cycles between cgjax's subpackages and top-level modules: none.
ALLOWED_CYCLES: set[str] = set()


def test_no_new_large_function_and_none_fixed_but_still_listed():
    found = {line.split(":")[0] for line in api_shape.large_functions()}
    assert found - ALLOWED_LARGE == set(), "new offenders: split them or pass an object"
    assert ALLOWED_LARGE - found == set(), "fixed: remove them from ALLOWED_LARGE"


def test_no_import_cycle_between_units():
    found = {line.split(":")[0] for line in api_shape.import_cycles()}
    assert found == ALLOWED_CYCLES


@pytest.fixture
def fake_tree(tmp_path):
    def write(rel, text):
        path = tmp_path / "cgjax" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    write("__init__.py", "from cgjax.b._x import g\n")
    write("a/__init__.py", "from cgjax.a._y import f\n")
    write("a/_y.py", "def f():\n    from cgjax import g\n")
    write("b/__init__.py", "")
    write("b/_x.py", "import cgjax.a\n\ndef g():\n    pass\n")
    body = "".join(f"    x{i} = {i}\n" for i in range(101))
    params = ", ".join(f"p{i}" for i in range(11))
    write(
        "c.py",
        f'def long():\n    """Doc.\n\n    More.\n    """\n{body}\n'
        f"def wide({params}):\n    pass\n\n"
        f"def _private({params}):\n    pass\n\n"
        f"class K:\n    def __init__(self, {params}):\n        pass\n\n"
        f"    def ok(self, {', '.join(f'p{i}' for i in range(10))}):\n        pass\n",
    )
    return str(tmp_path)


def test_the_script_finds_what_it_should(fake_tree):
    assert api_shape.large_functions(fake_tree) == [
        "cgjax.c.K.__init__: 11 parameters",
        "cgjax.c.long: 102 lines",
        "cgjax.c.wide: 11 parameters",
    ]
    # a.f imports g, which cgjax/__init__.py takes from cgjax.b; b imports a
    (cycle,) = api_shape.import_cycles(fake_tree)
    assert cycle.startswith("cycle cgjax.a -> cgjax.b -> cgjax.a: ")
    assert "cgjax/a/_y.py:2" in cycle and "cgjax/b/_x.py:1" in cycle
