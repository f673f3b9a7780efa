"""The compiled kernel's TTFT binning shortcut (sim/_jit.py `sure_bin`) against `core._bin`.

The kernel bins a TTFT from a table indexed by the top bits of its float and confirms the bin with the
bin's edges narrowed by 1e-9 relative, falling back to log10 when it is not sure. Any error in the
tables or the narrowing would put some TTFT in a neighbouring bin and shift the percentiles and the SLO
attainment, so every bin edge and every table cell boundary is checked to the ulp, plus millions of
random TTFTs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from kubectl_gpuscale.sim.core import HIST_BINS, _bin


def _jit() -> ModuleType:
    """`_jit` itself: its tables and helpers are not in the ahead-of-time module, which exports `run` only."""
    return importlib.import_module("kubectl_gpuscale.sim._jit")


def _around(x: np.ndarray, ulps: int = 2) -> np.ndarray:
    """`x` and its neighbours up to `ulps` floats away on either side."""
    out = [x]
    up, down = x.copy(), x.copy()
    for _ in range(ulps):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        out += [up, down]
    return np.concatenate(out)


def test_every_bin_edge_to_the_ulp() -> None:
    jit = _jit()
    b = np.arange(HIST_BINS, dtype=np.float64)
    exact_edges = 10.0 ** ((b - 1) / 100.0 - 3.0)
    sure = jit.SURE_BINS
    used = sure[:, 0] < sure[:, 1]
    assert used.sum() == HIST_BINS - 3  # bins 2..701 have a sure interval
    x = _around(np.concatenate([exact_edges, sure[used, 0], sure[used, 1], [1e-3, 1e4, 1e-4, 1e5]]))
    x = x[x > 0]
    np.testing.assert_array_equal(jit.bins(x), _bin(x))


def test_every_table_cell_boundary() -> None:
    jit = _jit()
    cells = np.arange(jit.CELL_FIRST, jit.CELL_LAST + 2, dtype=np.int64)
    x = _around((cells << jit.CELL_SHIFT).view(np.float64))
    np.testing.assert_array_equal(jit.bins(x), _bin(x))


def test_random_ttfts() -> None:
    jit = _jit()
    rng = np.random.default_rng(17)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-5.0, 5.0, 2_000_000),
            rng.uniform(0.0, 3.0, 500_000),  # where most TTFTs are
            np.array([0.0, 1e-300, 5e-324, 1e300]),
        ]
    )
    np.testing.assert_array_equal(jit.bins(x), _bin(x))


def test_add_to_hist_sums_each_bin_in_order() -> None:
    """Both rows (the run's histogram and the recent one) get each weight in its bin, added in order."""
    jit = _jit()
    rng = np.random.default_rng(3)
    x = 10.0 ** rng.normal(-0.5, 0.6, 100_000)
    w = rng.uniform(0.0, 40.0, x.shape[0])
    hist = np.zeros((2, HIST_BINS))
    hist[:, 5] = 0.1
    jit.add_to_hist(hist, x, w, x.shape[0])
    expected = np.zeros(HIST_BINS)
    expected[5] = 0.1
    for b, weight in zip(_bin(x), w, strict=True):
        expected[b] += weight
    assert hist[0].tobytes() == expected.tobytes()
    assert hist[1].tobytes() == expected.tobytes()
