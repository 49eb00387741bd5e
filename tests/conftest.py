"""Test configuration: one torch thread (the suite's small kernels run fastest so, and a shared 2-core CI machine
is not oversubscribed), and nothing of the user's results cache touched: every test's default cache root is a
temporary folder."""

import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_results_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FG_RESULTS", str(tmp_path_factory.getbasetemp() / "results-cache"))
