"""Runs outside a search: re-training a found network, baselines, scaled family members.

One row per run, next to the study and trial it came from (when it did), so reports can put
found networks and the papers' networks on the same axes. Architectures are stored as the JSON
``nas export --format json`` writes (strings, never genotype objects).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.schema import Base, UTCDateTime, utcnow
from storage.store import Store

RUN_KINDS = ("train", "baseline", "scale")


class Run(Base):
    __tablename__ = "nas_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # one of RUN_KINDS
    name: Mapped[str] = mapped_column(String(256), index=True)  # "mobilenetv2_100", "study/7"
    study: Mapped[str | None] = mapped_column(String(512), index=True)
    trial: Mapped[int | None] = mapped_column(Integer)
    architecture: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset: Mapped[str | None] = mapped_column(String(512))
    resolution: Mapped[int | None] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    latency_spread_ms: Mapped[float | None] = mapped_column(Float)
    params: Mapped[int | None] = mapped_column(Integer)
    macs: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    checkpoint: Mapped[str | None] = mapped_column(String(1024))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # recipe, epochs, seed...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def add_run(store: Store, **fields: Any) -> int:
    """Store one run (``Run``'s columns); returns its id."""
    if fields.get("kind") not in RUN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(RUN_KINDS)}, got {fields.get('kind')!r}")
    with store.session() as db:
        run = Run(**fields)
        db.add(run)
        db.flush()
        return run.id


def list_runs(store: Store, kind: str | None = None, study: str | None = None) -> list[Run]:
    """Stored runs, oldest first (detached rows: read their attributes)."""
    query = select(Run).order_by(Run.id)
    if kind is not None:
        query = query.where(Run.kind == kind)
    if study is not None:
        query = query.where(Run.study == study)
    with store.session() as db:
        return list(db.scalars(query))
