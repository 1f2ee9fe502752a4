"""Plotly figures of a study: accuracy against latency, search history, latency model, scaling, and
the path of each NetAdapt refinement in the database.

Trial clouds are one WebGL trace each (``Scattergl``), filled from whole columns, so a figure of
5,000 trials costs the same Python as one of 50; hover text comes from ``customdata``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go

from dashboards.study_data import Refinement, StudyData, TrialColumns
from storage import Run

GREY = "rgba(150, 150, 150, 0.45)"
TRIAL_HOVER = ("trial %{customdata[0]}<br>%{x:.3f} ms, %{y:.2f} %<br>params %{customdata[1]:.3s}, "
               "MACs %{customdata[2]:.3s}<br>%{text}<extra></extra>")


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", height=520,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.15}, margin={"t": 60})
    return fig


def pareto_mask(accuracy: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and strictly more accurate (or as accurate and
    strictly faster): one sort and a running maximum, O(n log n)."""
    order = np.lexsort((-accuracy, latency_ms))  # fastest first, most accurate first among equals
    best_before = np.maximum.accumulate(np.concatenate(([-np.inf], accuracy[order][:-1])))
    mask = np.zeros(len(accuracy), dtype=bool)
    mask[order] = accuracy[order] > best_before
    return mask


def _trial_cloud(trials: TrialColumns, keep: np.ndarray, name: str, marker: dict[str, Any]) -> go.Scattergl:
    custom = np.column_stack([trials.number[keep], trials.params[keep], trials.macs[keep]])
    return go.Scattergl(x=trials.latency_ms[keep], y=100 * trials.accuracy[keep], mode="markers", name=name,
                        marker=marker, customdata=custom, text=trials.origin[keep].tolist(), hovertemplate=TRIAL_HOVER)


def _scale_families(runs: list[Run]) -> dict[str, list[Run]]:
    """Scaled networks grouped by base network and coefficients, each family ordered by phi."""
    families: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        s = run.settings or {}
        base = run.name.split("@")[0]
        if s.get("alpha") is None:  # a released family publishes multipliers, not coefficients
            families[f"{base} {s.get('family')} family"].append(run)
        else:
            families[f"{base} α={s['alpha']:g} β={s['beta']:g} γ={s['gamma']:g}"].append(run)
    return {name: sorted(members, key=lambda r: (r.settings or {}).get("phi", 0)) for name, members in families.items()}


def accuracy_latency(data: StudyData) -> go.Figure:
    """Completed trials against the target: feasible coloured by trial number, infeasible grey, the
    Pareto front, the study's seed networks and the stored baselines and scaled families."""
    trials = data.trials
    done = (trials.state == "COMPLETE") & np.isfinite(trials.accuracy) & np.isfinite(trials.latency_ms)
    target = data.target_ms
    feasible = done & (trials.latency_ms <= target) if target is not None else done
    fig = go.Figure()
    fig.add_trace(_trial_cloud(trials, done & ~feasible, f"over target ({int((done & ~feasible).sum())})",
                               {"color": GREY, "size": 6}))
    fig.add_trace(_trial_cloud(trials, feasible, f"meets target ({int(feasible.sum())})",
                               {"color": trials.number[feasible], "colorscale": "Viridis", "size": 7, "showscale": True,
                                "colorbar": {"title": "trial", "thickness": 12}}))
    front = np.flatnonzero(done)[pareto_mask(trials.accuracy[done], trials.latency_ms[done])]
    front = front[np.argsort(trials.latency_ms[front])]
    fig.add_trace(go.Scatter(x=trials.latency_ms[front], y=100 * trials.accuracy[front], mode="lines+markers",
                             line={"shape": "hv", "color": "#d62728"}, marker={"size": 9, "symbol": "diamond-open"},
                             name=f"Pareto front ({len(front)})", text=[f"trial {n}" for n in trials.number[front]],
                             hovertemplate="%{text}<br>%{x:.3f} ms, %{y:.2f} %<extra></extra>"))
    seeds = np.flatnonzero(done & (trials.origin != "searched"))
    if len(seeds):
        fig.add_trace(go.Scatter(x=trials.latency_ms[seeds], y=100 * trials.accuracy[seeds], mode="markers+text",
                                 text=trials.origin[seeds].tolist(), textposition="top center", name="seed networks (in the study)",
                                 marker={"size": 11, "symbol": "square-open", "color": "#1f77b4"}))
    if data.baselines:
        fig.add_trace(go.Scatter(x=[r.latency_ms for r in data.baselines], y=[100 * r.accuracy for r in data.baselines],
                                 mode="markers+text", text=[r.name for r in data.baselines], textposition="bottom center",
                                 name="baselines (nas baselines)", marker={"size": 13, "symbol": "star", "color": "#ff7f0e"}))
    for name, members in _scale_families(data.scale_runs).items():
        drawn = [r for r in members if r.accuracy is not None and r.latency_ms is not None]
        if drawn:
            fig.add_trace(go.Scatter(x=[r.latency_ms for r in drawn], y=[100 * r.accuracy for r in drawn],
                                     mode="lines+markers+text", text=[f"φ={(r.settings or {}).get('phi')}" for r in drawn],
                                     textposition="middle right", name=f"scaled {name}"))
    if target is not None:
        fig.add_vline(x=target, line_dash="dash", line_color="#444", annotation_text=f"target {target:g} ms")
    return _layout(fig, f"Accuracy against measured latency: {int(done.sum())} completed trials",
                   "latency (ms)", "proxy accuracy (%)")


def search_history(data: StudyData) -> go.Figure:
    """Each completed trial's value and the best so far; a Pareto study plots feasible accuracy."""
    trials = data.trials
    done = (trials.state == "COMPLETE") & np.isfinite(trials.value)
    if data.pareto:
        target = data.target_ms if data.target_ms is not None else np.inf
        done &= trials.latency_ms <= target
        values, label = 100 * trials.accuracy[done], "accuracy of trials meeting the target (%)"
    else:
        values, label = trials.value[done], f"{data.metric_names[0]} ({data.settings.reward or 'reward'})"
    numbers = trials.number[done]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=numbers, y=values, mode="markers", name="trial", marker={"size": 5, "color": GREY},
                               hovertemplate="trial %{x}: %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=numbers, y=np.maximum.accumulate(values) if len(values) else values, mode="lines",
                             line={"shape": "hv", "color": "#d62728", "width": 2}, name="best so far"))
    return _layout(fig, "Search history", "trial", label)


def latency_model(models: list[dict[str, Any]]) -> go.Figure | None:
    """Each validated latency model (space, device, validation) as predictions against real
    measurements with their spread; `nas latency validate` draws one, the report all of them."""
    if not models:
        return None
    fig = go.Figure()
    low, high = np.inf, 0.0
    for model in models:
        v = model["validation"]
        points = v["points"]
        predicted = np.array([p["predicted_ms"] for p in points], dtype=float)
        measured = np.array([p["measured_ms"] for p in points], dtype=float)
        low, high = min(low, predicted.min(), measured.min()), max(high, predicted.max(), measured.max())
        device = model["device"] or {}
        fig.add_trace(go.Scattergl(
            x=predicted, y=measured, mode="markers", text=[p.get("arch_key", "") for p in points],
            error_y={"type": "data", "array": [p.get("spread_ms", 0.0) for p in points], "visible": True, "thickness": 1},
            name=(f"{model['space']} on {device.get('backend', '?')} {device.get('threads', '?')}t: "
                  f"{v.get('within_10pct', float('nan')):.0%} within ±10%, RMSE {v.get('rmse_ms', float('nan')):.3f} ms, "
                  f"τ {v.get('kendall_tau', float('nan')):.2f}"),
            hovertemplate="predicted %{x:.3f} ms<br>measured %{y:.3f} ms<br>%{text}<extra></extra>"))
    line = np.array([low, high])
    for factor, name, dash in ((1.0, "predicted = measured", "solid"), (1.1, "±10%", "dot"), (0.9, "±10%", "dot")):
        fig.add_trace(go.Scatter(x=line, y=line * factor, mode="lines", name=name, showlegend=factor != 0.9,
                                 line={"color": "#888", "dash": dash, "width": 1}, hoverinfo="skip"))
    return _layout(fig, "Latency model: predicted against measured (error bars: measurement IQR)",
                   "predicted latency (ms)", "measured latency (ms)")


def scaling_paths(data: StudyData) -> go.Figure | None:
    """Scaled families: latency against MACs as phi grows (EfficientNet-style compound scaling)."""
    families = _scale_families([r for r in data.scale_runs if r.macs is not None and r.latency_ms is not None])
    if not families:
        return None
    fig = go.Figure()
    for name, members in families.items():
        fig.add_trace(go.Scatter(x=[r.macs / 1e6 for r in members], y=[r.latency_ms for r in members],
                                 mode="lines+markers+text", text=[f"φ={(r.settings or {}).get('phi')}" for r in members],
                                 textposition="top left", name=name))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return _layout(fig, "Compound scaling paths", "MACs (M, log)", "latency (ms, log)")


def refinement_path(refinement: Refinement) -> go.Figure:
    """Every proposal the refinement scored as a faint point, the kept path from the start (labelled by
    iteration), the target, and the start and the result after the same long fine-tuning, measured."""
    fig = go.Figure()
    scored, path = refinement.proposals, refinement.path
    fig.add_trace(go.Scatter(
        x=[r.latency_ms for r in scored], y=[100 * r.accuracy for r in scored], mode="markers",
        name=f"proposals ({len(scored)})", marker={"color": GREY, "size": 6},
        text=[f"trial {r.number}, iteration {r.iteration}: {r.proposal}" for r in scored],
        hovertemplate="%{text}<br>%{x:.3f} ms, %{y:.2f} %<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[r.latency_ms for r in path], y=[100 * r.accuracy for r in path], mode="lines+markers+text",
        name=f"kept path ({len(path)})", text=[str(r.iteration) for r in path], textposition="top center",
        line={"color": "#1f77b4", "width": 2}, marker={"size": 8}, customdata=[[r.number, r.proposal] for r in path],
        hovertemplate="iteration %{text}, trial %{customdata[0]}: %{customdata[1]}<br>%{x:.3f} ms, %{y:.2f} %<extra></extra>"))
    ends = (("start", path[0] if path else None, {"size": 15, "symbol": "circle-open", "color": "#2ca02c", "line": {"width": 3}}),
            ("start, long-tuned and measured", refinement.baseline, {"size": 13, "symbol": "diamond", "color": "#2ca02c"}),
            ("final, long-tuned and measured", refinement.final, {"size": 16, "symbol": "star", "color": "#d62728"}))
    for name, record, marker in ends:
        if record is not None:
            fig.add_trace(go.Scatter(x=[record.latency_ms], y=[100 * record.accuracy], mode="markers", name=name,
                                     marker=marker, text=[f"trial {record.number}"],
                                     hovertemplate="%{text}<br>%{x:.3f} ms, %{y:.2f} %<extra></extra>"))
    if refinement.target_ms is not None:
        fig.add_vline(x=refinement.target_ms, line_dash="dash", line_color="#444",
                      annotation_text=f"target {refinement.target_ms:g} ms")
    status = "" if refinement.final is not None else " (running or stopped before its result)"
    return _layout(fig, f"Refinement {refinement.study}: {max(len(path) - 1, 0)} iterations kept of {len(scored)} "
                        f"proposals scored{status}", "latency (ms: the table's, measured for the long-tuned pair)",
                   "proxy accuracy (%)")


class GridPointView(Protocol):
    """What the grid figure reads of a scaling-grid point (nas's ``GridPoint``)."""

    label: str
    alpha: float
    beta: float
    gamma: float
    resolution: int
    blocks: int
    macs: int
    accuracy: float | None
    latency_ms: float | None
    reward: float | None


def grid_figure(points: Sequence[GridPointView], best_accuracy: GridPointView | None,
                best_reward: GridPointView | None, title: str) -> go.Figure:
    """Accuracy against MACs and against latency, one marker per trained grid point."""
    from plotly.subplots import make_subplots

    done = [p for p in points if p.accuracy is not None and p.latency_ms is not None]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("accuracy vs MACs", "accuracy vs latency"))
    hover = [f"alpha {p.alpha:g}, beta {p.beta:g}, gamma {p.gamma:g}<br>{p.resolution} px, {p.blocks} blocks"
             f"<br>reward {p.reward if p.reward is not None else '-'}" for p in done]
    marks = {"best accuracy": best_accuracy, "best reward": best_reward}
    for col, x_of, axis in ((1, lambda p: p.macs / 1e6, "MACs (M)"), (2, lambda p: p.latency_ms, "latency (ms)")):
        fig.add_trace(go.Scatter(x=[x_of(p) for p in done], y=[p.accuracy for p in done], mode="markers+text",
                                 text=[p.label for p in done], textposition="top center", hovertext=hover,
                                 name="grid points", showlegend=col == 1, marker={"size": 9}), row=1, col=col)
        for symbol, (label, p) in zip(("star", "diamond"), marks.items(), strict=True):
            if p is not None:
                fig.add_trace(go.Scatter(x=[x_of(p)], y=[p.accuracy], mode="markers", name=f"{label}: {p.label}",
                                         showlegend=col == 1, marker={"size": 16, "symbol": symbol}), row=1, col=col)
        fig.update_xaxes(title_text=axis, row=1, col=col)
    fig.update_yaxes(title_text="proxy accuracy", row=1, col=1)
    fig.update_layout(title=title)
    return fig
