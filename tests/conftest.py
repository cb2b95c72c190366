"""Fixtures shared by several test modules (opt in with ``pytest.mark.usefixtures``)."""
import pytest
import torch


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point MCLFIR_CACHE at this test's temporary folder."""
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and much faster on a shared, busy CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
