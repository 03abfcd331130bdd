"""The sweep's HTML report: every chart renders in headless Chromium, offline, without errors."""

from __future__ import annotations

from pathlib import Path

# the backtest report's browser harness: one copy of the error collector and the checks
from test_report import _assert_rendered_without_errors, _render, chromium  # noqa: F401

from finchan.trade import sweep
from finchan.trade._synthetic import make_bars

DIVS = ["finchan-sweep-heatmap-1", "finchan-sweep-distribution", "finchan-sweep-windows",
        "finchan-sweep-oos-equity", "finchan-sweep-pbo"]


def test_the_walk_forward_sweep_report_renders_in_headless_chromium(
    chromium: str, tmp_path: Path  # noqa: F811
) -> None:
    out = tmp_path / "sweep"
    result = sweep("finchan.trade.examples:SmaCross", {"SYN": make_bars(1500)},
                   {"fast": [5, 8], "slow": [20, 30]}, workers=0, cash=1e6, out=out,
                   walk_forward="train=6h,test=3h")
    assert len(result.windows) == 6
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script src=" not in page and "<link " not in page  # nothing fetched: offline
    assert page.count('class="plotly-graph-div"') == len(DIVS)
    assert "Walk-forward efficiency" in page and "PBO (CSCV)" in page
    assert (out / "best" / "report.html").exists()
    dom, stderr = _render(chromium, out / "report.html", tmp_path)
    parts = _assert_rendered_without_errors(dom, stderr, DIVS)
    assert 'class="hm"' in parts["finchan-sweep-heatmap-1"]  # plotly's heatmap layer
