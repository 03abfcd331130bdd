"""The sweep's self-contained HTML report (plotly.js embedded, works offline)."""

from __future__ import annotations

import html
import itertools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finchan.trade.sweeps._grid import Space
    from finchan.trade.sweeps._sweep import SweepResult

__all__ = ["write_sweep_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
p.note { color: #555; }
"""
_CONFIG = {"displaylogo": False, "responsive": True}


def _fig(fig: Any, div_id: str) -> str:
    import plotly.io as pio

    fig.update_layout(template="plotly_white", margin={"l": 70, "r": 30, "t": 50, "b": 50})
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config=_CONFIG, default_height="420px")


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


#: at most this many heatmaps (one per pair of parameters)
MAX_HEATMAPS = 6


def _heatmaps(result: SweepResult, space: Space) -> str:
    varied = [n for n in space.names if len(space.values[n]) > 1]
    if len(varied) < 2 or result.table.empty:
        return '<p class="note">Heatmap: needs two parameters with several values.</p>'
    pairs = list(itertools.combinations(varied, 2))
    parts = [_heatmap(result, space, x, y, i) for i, (x, y) in
             enumerate(pairs[:MAX_HEATMAPS], 1)]
    if len(pairs) > MAX_HEATMAPS:
        parts.append(f'<p class="note">{len(pairs) - MAX_HEATMAPS} more pairs of parameters '
                     "not drawn.</p>")
    return "\n".join(parts)


def _heatmap(result: SweepResult, space: Space, x_name: str, y_name: str, number: int) -> str:
    import plotly.graph_objects as go

    frame = result.table
    if "window" in frame.columns:
        frame = frame[frame["window"] == frame["window"].max()]
    for other in space.names:
        if other not in (x_name, y_name):
            frame = frame[frame[other] == result.best_params.get(other)]
    xs, ys = space.values[x_name], space.values[y_name]
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for _, row in frame.iterrows():
        value = row[result.metric]
        if value is not None and isinstance(value, float) and math.isfinite(value):
            z[ys.index(row[y_name])][xs.index(row[x_name])] = value
    fig = go.Figure(go.Heatmap(z=z, x=[str(v) for v in xs], y=[str(v) for v in ys],
                               colorscale="Viridis", colorbar={"title": result.metric}))
    others = ", ".join(f"{k}={v}" for k, v in result.best_params.items()
                       if k not in (x_name, y_name))
    fig.update_layout(title=f"{result.metric} by {x_name} and {y_name}"
                      + (f" (at the best {others})" if others else ""),
                      xaxis_title=x_name, yaxis_title=y_name, xaxis_type="category",
                      yaxis_type="category")
    return _fig(fig, f"finchan-sweep-heatmap-{number}")


def _distribution(result: SweepResult) -> str:
    import plotly.graph_objects as go

    values = [v for v in result.table[result.metric].tolist()
              if isinstance(v, float) and math.isfinite(v)]
    fig = go.Figure(go.Histogram(x=values, nbinsx=min(40, max(5, len(values)))))
    fig.update_layout(title=f"Distribution of {result.metric} over the combinations",
                      xaxis_title=result.metric, yaxis_title="combinations")
    return _fig(fig, "finchan-sweep-distribution")


def _overfitting(result: SweepResult) -> str:
    import plotly.graph_objects as go

    dsr, pbo = result.dsr, result.pbo
    rows = [
        ("deflated Sharpe ratio (probability)", dsr.get("dsr")),
        ("best's Sharpe ratio per period", dsr.get("sharpe")),
        ("SR0, expected max Sharpe under the null", dsr.get("sr0")),
        ("trials", dsr.get("trials")),
        ("periods", dsr.get("periods")),
        ("skewness / raw kurtosis", f"{_num(dsr.get('skew'))} / {_num(dsr.get('kurtosis'))}"),
        ("PBO (CSCV)", pbo.get("pbo")),
        ("CSCV splits / blocks", f"{pbo.get('splits', 0)} / {pbo.get('blocks', 0)}"),
    ]
    table = "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_num(v)}</td></tr>"
                                for k, v in rows) + "</table>"
    fig = go.Figure(go.Histogram(x=result.pbo_logits, nbinsx=30))
    fig.update_layout(title="CSCV: logit of the in-sample best's out-of-sample rank "
                      "(PBO = share <= 0)", xaxis_title="logit", yaxis_title="splits")
    fig.add_vline(x=0.0, line_dash="dash")
    return ("<h2>Overfitting</h2>" + table
            + '<p class="note">See docs/sweeps.md for the formulas and their sources.</p>'
            + _fig(fig, "finchan-sweep-pbo"))


def _walk_forward(result: SweepResult) -> str:
    import plotly.graph_objects as go

    windows = result.windows
    if windows is None:
        return ""
    metric = result.metric
    parts = ["<h2>Walk-forward</h2>"]
    wfe = result.wfe or {}
    parts.append(f"<p>Walk-forward efficiency: <b>{_num(wfe.get('wfe'))}</b></p>")
    if wfe.get("caveat"):
        parts.append(f'<p class="note">Caveat: {html.escape(wfe["caveat"])}</p>')
    if f"is_{metric}" in windows.columns:
        labels = [str(w) for w in windows["window"]]
        fig = go.Figure([
            go.Bar(name=f"in-sample {metric}", x=labels, y=windows[f"is_{metric}"].tolist()),
            go.Bar(name=f"out-of-sample {metric}", x=labels, y=windows[f"oos_{metric}"].tolist()),
        ])
        fig.update_layout(title="Per window", xaxis_title="window", barmode="group")
        parts.append(_fig(fig, "finchan-sweep-windows"))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in windows.columns)
    body = "".join("<tr>" + "".join(f"<td>{_num(v)}</td>" for v in row) + "</tr>"
                   for row in windows.itertuples(index=False))
    parts.append(f"<table><tr>{head}</tr>{body}</table>")
    equity = result.oos_equity
    if equity is not None and len(equity):
        x = equity.index.strftime("%Y-%m-%dT%H:%M:%S").tolist()
        fig = go.Figure(go.Scatter(x=x, y=equity.tolist(), mode="lines", name="equity"))
        fig.update_layout(title="Stitched out-of-sample equity", yaxis_title="equity")
        parts.append(_fig(fig, "finchan-sweep-oos-equity"))
    return "\n".join(parts)


def _top(result: SweepResult, space: Space, rows: int = 20) -> str:
    columns = [c for c in ("window", *space.names, result.metric, "total_return",
                           "max_drawdown", "trades", "error") if c in result.table.columns]
    frame = result.table[columns].head(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_num(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<h2>Best combinations</h2><table><tr>{head}</tr>{body}</table>"


def write_sweep_report(path: str | os.PathLike[str], result: SweepResult, space: Space) -> Path:
    """Write the report; the file appears whole (written aside, then renamed)."""
    import plotly.offline

    title = f"finchan sweep: {len(result.table)} combinations by {result.metric}"
    best = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Best: <b>{html.escape(best)}</b>; failures: {result.failures}. "
        "The best combination's full report: "
        '<a href="best/report.html">best/report.html</a>.</p>',
        _top(result, space),
        _heatmaps(result, space),
        _distribution(result),
        _walk_forward(result),
        _overfitting(result),
        "<footer>Written by finchan.trade.sweeps. Times are UTC.</footer>",
    ]
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>",
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
        "</head>", "<body>", *body, "</body>", "</html>", "",
    ])
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    with open(partial, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(page)
    os.replace(partial, target)
    return target
