"""One self-contained HTML report of a study (plotly.js inline: it opens with no network), and
static images of the same figures for papers and READMEs.

Each figure's plotly JSON sits in its own ``<script type="application/json" id="figure-NAME">``
and the page's summary in ``id="report-summary"``, so scripts (and tests) read the data back
without parsing JavaScript.
"""

from __future__ import annotations

import datetime
import html
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from dashboards import figures
from dashboards.study_data import StudyData, read_refinements, read_study
from storage import Store

PNG_SIZE = {"width": 1100, "height": 560}


class ReportError(Exception):
    """The report cannot be written as asked (a missing browser for images, an unwritable path)."""


@dataclass(frozen=True)
class Report:
    title: str
    summary: dict[str, Any]
    figures: dict[str, go.Figure]  # name -> figure, in page order


def _summary(data: StudyData) -> dict[str, Any]:
    counts = dict(Counter(data.trials.state.tolist()))
    settings = data.settings
    return {
        "study": data.name, "objective": "pareto" if data.pareto else "reward", "metric_names": data.metric_names,
        **{k: v for k, v in asdict(settings).items() if k in _SUMMARY_SETTINGS}, "target_latency_ms": data.target_ms,
        "trials": len(data.trials), "states": counts, "baselines": [r.name for r in data.baselines],
        "baselines_on_other_datasets": data.baselines_elsewhere, "scale_runs": len(data.scale_runs),
        "latency_models": [m["space"] for m in data.latency_models],
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


_SUMMARY_SETTINGS = ("space", "dataset", "reward", "reward_weight", "device")


def build_report(study: optuna.Study, store: Store) -> Report:
    """Read the study once and draw every figure the stored data allows, and the path of every
    refinement in the database (whichever study the report is of)."""
    data = read_study(study, store)
    drawn = {"accuracy_latency": figures.accuracy_latency(data), "history": figures.search_history(data),
             "latency_model": figures.latency_model(data.latency_models), "scaling": figures.scaling_paths(data)}
    for refinement in read_refinements(store):
        name = "path-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", refinement.study)  # an HTML id and a PNG file name
        while name in drawn:  # two study names that differ only in such characters
            name += "-"
        drawn[name] = figures.refinement_path(refinement)
    return Report(f"nas report: {data.name}", _summary(data), {k: v for k, v in drawn.items() if v is not None})


def _json_script(element_id: str, payload: str) -> str:
    safe = payload.replace("</", "<\\/")  # "</" would end the script element early; JSON allows "\/"
    return f'<script type="application/json" id="{element_id}">{safe}</script>'


def _summary_html(summary: dict[str, Any]) -> str:
    device = summary["device"] or {}
    facts = [("space", summary["space"]), ("dataset", summary["dataset"]),
             ("target", f"{summary['target_latency_ms']:g} ms" if summary["target_latency_ms"] else None),
             ("objective", summary["objective"] if summary["objective"] == "pareto" else summary["reward"]),
             ("trials", ", ".join(f"{n} {state.lower()}" for state, n in summary["states"].items())),
             ("device", ", ".join(f"{k} {v}" for k, v in device.items())),
             ("baselines", ", ".join(summary["baselines"]) or "none stored")]
    if summary["baselines_on_other_datasets"]:
        facts.append(("not drawn", f"{summary['baselines_on_other_datasets']} baseline(s) trained on other datasets"))
    return "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts if v) + "</ul>"


def to_html(report: Report) -> str:
    sections = "\n".join(f'<div class="figure" id="{name}"></div>\n{_json_script(f"figure-{name}", fig.to_json())}'
                         for name, fig in report.figures.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>
<style>body {{font-family: sans-serif; max-width: 1200px; margin: 1em auto;}} .figure {{margin: 2em 0;}}</style>
<script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(report.title)}</h1>
{_summary_html(report.summary)}
{_json_script("report-summary", json.dumps(report.summary, default=str))}
{sections}
<script>
for (const div of document.querySelectorAll("div.figure")) {{
  const figure = JSON.parse(document.getElementById("figure-" + div.id).textContent);
  Plotly.newPlot(div, figure.data, figure.layout, {{responsive: true}});
}}
</script></body></html>
"""


def write_html(report: Report, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_html(report), encoding="utf-8")
    except OSError as err:
        raise ReportError(f"cannot write {path}: {err.strerror or err}") from err
    return path


def write_pngs(report: Report, html_path: Path) -> list[Path]:
    """One PNG per figure beside the HTML (``report-history.png``), rendered by kaleido in a
    headless Chrome or Chromium (found on PATH, or at ``$BROWSER_PATH``)."""
    paths = [html_path.with_name(f"{html_path.stem}-{name}.png") for name in report.figures]
    try:
        pio.write_images(list(report.figures.values()), paths, **PNG_SIZE)
    except RuntimeError as err:
        if "Chrome" not in str(err):
            raise
        raise ReportError("--png needs Chrome or Chromium: `apt-get install chromium`, "
                          "or set BROWSER_PATH to a Chrome binary") from err
    return paths
