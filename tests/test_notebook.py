"""The loss-composition notebook runs clean (smoke preset), and its paired .py is in sync."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "compose_losses.ipynb")
SCRIPT = os.path.join(ROOT, "examples", "compose_losses.py")


def test_notebook_is_paired_with_its_script():
    jupytext = pytest.importorskip("jupytext")
    nb, py = jupytext.read(NOTEBOOK), jupytext.read(SCRIPT)
    code = lambda n: [c.source for c in n.cells]  # noqa: E731
    assert code(nb) == code(py), "run: jupytext --sync examples/compose_losses.py"


@pytest.mark.slow
def test_notebook_runs_clean(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("CGJAX_PRESET", "smoke")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": ROOT}})  # fmt: skip
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "preset: smoke" in text and "finite difference" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # inline plots
