"""optuna-dashboard notes and artifacts, so a person can judge a trial from the dashboard alone.

The objective uploads each trial's architecture file as a *trial* artifact while the trial runs
(Optuna refuses new trial attributes once it has finished); a study callback then writes the
trial's note, which links it. optuna-dashboard keeps notes in the study's attributes and scans
them for every trial it lists, so a note stays under one attribute chunk where it can.
"""

from __future__ import annotations

from dataclasses import replace
import tempfile
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

from nas.architecture import write_architecture
from nas.render import block_rows, fmt, fmt_count
from nas.results import record_genotype, trial_architecture
from storage import Store, TrialRecord

ARCHITECTURE_FILE = "architecture.json"
_BLOCK_COLUMNS = ("stage", "block string", "op", "r", "k", "s", "e", "c", "se", "act", "skip")


def artifact_dir(url: str) -> Path:
    """``<db stem>-artifacts/`` beside an SQLite file; ``nas-artifacts/`` in the working directory
    for a server database, which has no folder of its own."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database)
        return database.with_name(f"{database.stem}-artifacts")
    return Path("nas-artifacts")


def _device_line(device: dict[str, Any] | None) -> str:
    if not device:
        return "-"
    parts = [str(device.get("cpu") or device.get("gpu") or "unknown device"), f"{device.get('threads', '?')} thread(s)",
             f"{device.get('backend', '?')} (torch {device.get('torch', '?')})",
             f"{device.get('resolution', '?')} px, batch {device.get('batch', '?')}",
             f"allocator {device.get('allocator', '?')}"]
    return ", ".join(parts)


def _latency_lines(record: TrialRecord) -> list[tuple[str, str]]:
    """What the search used (a measurement or the latency table's prediction) and, beside a
    measurement, the table's prediction with its error."""
    latency, predicted = record.latency_ms, record.latency_predicted_ms
    if latency is None:
        return [("latency", "-")]
    if record.latency_source == "lut":
        return [("latency", f"{latency:.3f} ms, predicted from the latency table (not measured)")]
    rows = [("latency", f"{latency:.3f} ms ± {fmt(record.latency_spread_ms, '.3f')} (IQR), measured")]
    if predicted is not None:
        rows.append(("predicted latency", f"{predicted:.3f} ms from the latency table ({100 * (predicted / latency - 1):+.1f} %)"))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def trial_note(trial: FrozenTrial, metric_names: list[str] | None, links: list[tuple[str, str]]) -> str:
    """The note's markdown: summary, block table and links to the trial's artifacts."""
    record = TrialRecord.from_trial(trial)
    origin = record.seed_arch or (f"{record.warm_start} skeleton" if record.warm_start else "searched")
    summary: list[tuple[str, str]] = []
    if trial.values:
        names = metric_names or [f"objective {i}" for i in range(len(trial.values))]
        summary += [(name, f"{value:.4f}") for name, value in zip(names, trial.values, strict=False)]
    summary.append((f"accuracy ({record.estimator or 'train'})", fmt(None if record.accuracy is None else 100 * record.accuracy, ".2f") + " %"))
    summary += _latency_lines(record)
    summary += [("params", fmt_count(record.params)), ("MACs", fmt_count(record.macs)),
                ("device", _device_line(record.device))]
    if record.fail_reason:
        summary.append(("failed", record.fail_reason))
    parts = [f"### Trial {trial.number}: {trial.state.name}, {origin}", _table(("", ""), summary)]
    genotype = record_genotype(record)
    if genotype is not None:
        rows = [(str(r["stage"]), f"`{r['block']}`", r["op"], str(r["repeats"]), str(r["kernel"]), str(r["stride"]),
                 f"{r['expansion']:g}", str(r["out_chs"]), f"{r['se_ratio']:g}", r["act"], "yes" if r["skip"] else "no")
                for r in block_rows(genotype)]
        parts += ["#### Blocks", _table(_BLOCK_COLUMNS, rows),
                  f"stem {genotype.stem_size} ch, head {genotype.num_features or 'none'}, "
                  f"{genotype.family} family, default act {genotype.act}"]
    if links:
        parts += ["#### Artifacts", "\n".join(f"- [{label}]({href})" for label, href in links)]
    return "\n\n".join(parts) + "\n"


def upload_architecture(trial: optuna.Trial, store: Store) -> None:
    """Attach the running trial's architecture file as its artifact (``<db stem>-artifacts/``)."""
    record = replace(TrialRecord.from_attrs(trial.user_attrs), number=trial.number, state="RUNNING")
    folder = artifact_dir(store.url)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = write_architecture(trial_architecture(trial.study.study_name, record), Path(tmp) / ARCHITECTURE_FILE)
            upload_artifact(artifact_store=FileSystemArtifactStore(folder), file_path=str(path), study_or_trial=trial)
    except OSError as err:  # an unwritable folder must not stop the search; the note says so
        warnings.warn(f"no architecture artifact for trial {trial.number}: {err}", stacklevel=2)


def artifact_links(storage: BaseStorage, study: optuna.Study, trial: FrozenTrial) -> list[tuple[str, str]]:
    """(file name, optuna-dashboard's download path) of each of the trial's artifacts."""
    metas = get_all_artifact_meta(trial, storage=storage)
    if not metas:
        return []
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    return [(meta.filename, f"/artifacts/{study_id}/{trial_id}/{meta.artifact_id}") for meta in metas]


class TrialNotes:
    """Study callback: each finished trial's note, with links to its artifacts."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage  # the study's own storage object

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # imported at the first note, not with the module: optuna-dashboard loads its whole web app and
        # scikit-learn (~1.7 s here), which a command whose worker processes run the trials never needs
        from optuna_dashboard import save_note

        # save_note takes a live Trial: rebuilding one only reads the trial back from storage
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(
            self.storage.get_study_id_from_name(study.study_name), trial.number)
        save_note(optuna.Trial(study, trial_id), trial_note(trial, study.metric_names,
                                                           artifact_links(self.storage, study, trial)))
