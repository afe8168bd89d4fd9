"""water_data_efficiency killed inside its stages and rerun: same results (see ``fault_chain``)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_chain import check_kill_chain  # noqa: E402


@pytest.mark.slow
def test_killed_inside_stages_and_rerun_gives_the_same_results(tmp_path, record_property):
    check_kill_chain("water_data_efficiency", tmp_path, record_property)
