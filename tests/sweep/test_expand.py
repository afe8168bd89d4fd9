"""Sweep specifications: parsing, the cartesian expansion, grouping by structure."""

import ml_collections
import pytest

from cgjax import sweep


def base():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = "gnn"
    c.train = ml_collections.ConfigDict(
        {"lr": 1e-3, "n_steps": 100, "batch_size": 4, "clip_norm": None, "hidden": (8, 8)}
    )
    return c


def test_parse_literals_and_range():
    assert sweep.parse_sweep("train.lr=[1e-3,3e-4]") == ("train.lr", [1e-3, 3e-4])
    assert sweep.parse_sweep("seed=range(8)") == ("seed", list(range(8)))
    assert sweep.parse_sweep("seed=range(2, 10, 4)") == ("seed", [2, 6])
    assert sweep.parse_sweep("--config.model=['gnn', 'schnet']") == ("model", ["gnn", "schnet"])
    assert sweep.parse_sweep("train.hidden=(4, 4)") == ("train.hidden", [(4, 4)])  # one tuple
    assert sweep.parse_sweep("train.lr = 0.1") == ("train.lr", [0.1])


@pytest.mark.parametrize(
    "text, match",
    [
        ("train.lr", "expected KEY"),
        ("=[1]", "expected KEY"),
        ("seed=[]", "no values"),
        ("seed=__import__('os').getcwd()", "only call allowed is range"),
        ("seed=range(n)", "integer literals"),
        ("seed=range(1.5)", "integer literals"),
        ("seed=range(stop=3)", "1 to 3 positional"),
        ("model=[gnn]", "not a Python literal"),
        ("seed=[1,", "not a Python literal"),
    ],
)
def test_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        sweep.parse_sweep(text)


def test_expand_is_the_cartesian_product_in_order():
    configs = sweep.expand(base(), ["train.lr=[1e-2, 1e-3]", "seed=range(3)"])
    assert [(c.train.lr, c.seed) for c in configs] == [
        (1e-2, 0), (1e-2, 1), (1e-2, 2), (1e-3, 0), (1e-3, 1), (1e-3, 2),
    ]  # fmt: skip
    assert base().train.lr == 1e-3  # the base is not modified
    # An int for a float key becomes a float; a list for a tuple key a tuple.
    (c,) = sweep.expand(base(), [("train.lr", [1]), ("train.hidden", [[4, 4]])])
    assert isinstance(c.train.lr, float) and c.train.hidden == (4, 4)


def test_expand_errors_name_the_key():
    with pytest.raises(KeyError, match=r"'train\.lrr'.*closest: train\.lr"):
        sweep.expand(base(), ["train.lrr=[1e-3]"])
    with pytest.raises(TypeError, match=r"'train\.n_steps' is int.*'0\.5'"):
        sweep.expand(base(), ["train.n_steps=[10, 0.5]"])  # the second value is wrong
    with pytest.raises(TypeError, match="'model' is str"):
        sweep.expand(base(), ["model=[1]"])
    with pytest.raises(ValueError, match=r"more than once: \['seed'\]"):
        sweep.expand(base(), ["seed=[1]", "seed=[2]"])


def test_group_by_structure():
    configs = sweep.expand(
        base(), ["train.n_steps=[10, 20]", "train.lr=[1e-2, 1e-3]", "seed=range(2)"]
    )
    # Seeds and float lrs are traced: one group per n_steps (it sets the step count).
    assert sweep.group_by_structure(configs) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # Strings, tuples and None-vs-float split groups.
    more = sweep.expand(base(), ["model=['gnn', 'schnet']", "train.hidden=[(4,), (4, 4)]"])
    assert sweep.group_by_structure(more) == [[0], [1], [2], [3]]
    clip = sweep.expand(base(), ["train.clip_norm=[None, 1.0, 2.0]"])
    assert sweep.group_by_structure(clip) == [[0], [1, 2]]
    # An explicit list of dynamic keys: lr is then structural.
    assert sweep.group_by_structure(configs, ["seed"]) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert sweep.group_by_structure(configs, lambda k, v: True) == [list(range(8))]
