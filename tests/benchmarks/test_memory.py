import pytest
import torch

from benchmarks.memory import peak_rss_bytes, peak_tensor_bytes, reset_peak_rss


def test_peak_tensor_bytes_sees_a_temporary():
    assert peak_tensor_bytes(lambda: torch.ones(1024, 1024).sum()) >= 4 * 1024 * 1024


def test_peak_rss_follows_a_large_allocation():
    if not reset_peak_rss():
        pytest.skip("peak RSS cannot be reset on this platform")
    before = peak_rss_bytes()
    x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
    assert peak_rss_bytes() >= before + 200 * 2**20
    del x


def test_peak_tensor_bytes_ignores_frees_of_older_blocks():
    held = [torch.ones(1024, 1024)]  # allocated before the measurement

    def fn():
        held.pop()  # freed inside it: must not offset what fn allocates
        return torch.ones(1024, 1024).sum()

    assert peak_tensor_bytes(fn) >= 4 * 1024 * 1024
