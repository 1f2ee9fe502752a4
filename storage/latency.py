"""Latency tables: per-device block latencies, the model calibrated on them, and real checks.

A table belongs to one device fingerprint (CPU model, threads, backend and its version,
resolution, batch): ``device_key`` hashes it, so a table is never used for another device.
Entries are committed in batches as they are measured, so an interrupted build resumes where
it stopped. ``nas_trial_latency`` holds the end-of-search real measurements of trials whose
latency came from the table (Optuna's finished trials cannot take new attributes).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.contract import device_identity
from storage.schema import Base, UTCDateTime, upsert, utcnow
from storage.store import Store


def device_key(fingerprint: dict[str, Any]) -> str:
    """The table's key: a field added later is keyed only where it differs from what older tables
    were measured with, so they keep their key (``contract.device_identity``)."""
    return hashlib.sha1(json.dumps(device_identity(fingerprint), sort_keys=True).encode()).hexdigest()[:16]


class LatencyTable(Base):
    __tablename__ = "nas_latency_tables"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_key: Mapped[str] = mapped_column(String(32), unique=True)
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatencyEntry(Base):
    __tablename__ = "nas_latency_entries"
    __table_args__ = (UniqueConstraint("table_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("nas_latency_tables.id"), index=True)
    key: Mapped[str] = mapped_column(String(512))  # a layer signature, see nas/latency/layers.py
    latency_ms: Mapped[float] = mapped_column(Float)
    spread_ms: Mapped[float] = mapped_column(Float)
    load_avg: Mapped[float] = mapped_column(Float)
    params: Mapped[int] = mapped_column(Integer)  # the layer's weights, a calibration feature
    passes: Mapped[int] = mapped_column(Integer, default=1)  # measuring rounds so far; latency_ms is the fastest
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatencyModel(Base):
    """The predictor of one space on one table: its calibration, validation and build time."""

    __tablename__ = "nas_latency_models"
    __table_args__ = (UniqueConstraint("table_id", "space"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("nas_latency_tables.id"), index=True)
    space: Mapped[str] = mapped_column(String(64))
    build_s: Mapped[float | None] = mapped_column(Float)  # measuring the entries, summed over resumed runs
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TrialLatency(Base):
    __tablename__ = "nas_trial_latency"
    __table_args__ = (UniqueConstraint("study", "trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study: Mapped[str] = mapped_column(String(512), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)  # measured
    spread_ms: Mapped[float] = mapped_column(Float)
    load_avg: Mapped[float] = mapped_column(Float)
    predicted_ms: Mapped[float | None] = mapped_column(Float)
    device: Mapped[dict[str, Any]] = mapped_column(JSON)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _row(obj: Base) -> dict[str, Any]:
    return {c.name: getattr(obj, c.name) for c in obj.__table__.columns}


def find_table(store: Store, fingerprint: dict[str, Any]) -> int | None:
    """The id of the table for exactly this device, or None."""
    with store.session() as db:
        return db.scalar(select(LatencyTable.id).where(LatencyTable.device_key == device_key(fingerprint)))


def get_or_create_table(store: Store, fingerprint: dict[str, Any]) -> int:
    """The device's table, created if absent (one insert-or-nothing: two workers cannot race)."""
    key = device_key(fingerprint)
    with store.session() as db:
        upsert(db, LatencyTable, {"device_key": key}, {"fingerprint": fingerprint}, update=False)
        return db.scalar(select(LatencyTable.id).where(LatencyTable.device_key == key))


def load_entries(store: Store, table_id: int) -> dict[str, tuple[float, int]]:
    """Entry key -> (median latency in ms, params)."""
    with store.session() as db:
        rows = db.execute(select(LatencyEntry.key, LatencyEntry.latency_ms, LatencyEntry.params)
                          .where(LatencyEntry.table_id == table_id))
        return {key: (latency, params) for key, latency, params in rows}


def record_pass(store: Store, table_id: int, key: str, passes: int, *, latency_ms: float, spread_ms: float,
                load_avg: float, params: int) -> None:
    """Store round ``passes`` of one entry's measurement: the entry keeps the fastest round.

    Insert-or-nothing first, then the row read locked: the write opens the transaction (SQLite runs
    a lone SELECT outside one), so two builds of one table take turns on the entry and neither's
    faster round or later pass count is lost."""
    with store.session() as db:
        upsert(db, LatencyEntry, {"table_id": table_id, "key": key},
               dict(passes=passes, latency_ms=latency_ms, spread_ms=spread_ms, load_avg=load_avg, params=params),
               update=False)
        entry = db.scalar(select(LatencyEntry).where(LatencyEntry.table_id == table_id, LatencyEntry.key == key)
                          .with_for_update())
        if latency_ms < entry.latency_ms:
            entry.latency_ms, entry.spread_ms, entry.load_avg, entry.params = latency_ms, spread_ms, load_avg, params
        entry.passes = max(entry.passes, passes)


def entry_passes(store: Store, table_id: int) -> dict[str, int]:
    """Entry key -> measuring rounds done (a build resumes each round where it stopped)."""
    with store.session() as db:
        return dict(db.execute(select(LatencyEntry.key, LatencyEntry.passes).where(LatencyEntry.table_id == table_id)).all())


def load_model(store: Store, table_id: int, space: str) -> dict[str, Any] | None:
    with store.session() as db:
        model = db.scalar(select(LatencyModel).where(LatencyModel.table_id == table_id, LatencyModel.space == space))
        return _row(model) if model else None


def list_models(store: Store, table_id: int) -> list[dict[str, Any]]:
    with store.session() as db:
        return [_row(m) for m in db.scalars(select(LatencyModel).where(LatencyModel.table_id == table_id)
                                             .order_by(LatencyModel.id))]


def save_model(store: Store, table_id: int, space: str, **fields: Any) -> None:
    """Create or update the space's model on the table (build_s, calibration, validation)."""
    with store.session() as db:
        upsert(db, LatencyModel, {"table_id": table_id, "space": space}, {**fields, "updated_at": utcnow()})


def list_tables(store: Store) -> list[dict[str, Any]]:
    """Every table with its entry count and the models (calibration, validation) built on it."""
    with store.session() as db:
        counts = dict(db.execute(select(LatencyEntry.table_id, func.count()).group_by(LatencyEntry.table_id)).all())
        tables = []
        for table in db.scalars(select(LatencyTable).order_by(LatencyTable.id)):
            models = [_row(m) for m in db.scalars(select(LatencyModel).where(LatencyModel.table_id == table.id))]
            tables.append({**_row(table), "entries": counts.get(table.id, 0), "models": models})
        return tables


def add_trial_latency(store: Store, study: str, trial: int, **fields: Any) -> None:
    """Store (or replace) the real measurement of one trial (latency_ms, spread_ms, ...)."""
    with store.session() as db:
        upsert(db, TrialLatency, {"study": study, "trial": trial}, {**fields, "measured_at": utcnow()})


def trial_latencies(store: Store, study: str) -> dict[int, TrialLatency]:
    """Trial number -> its end-of-search real measurement (detached rows)."""
    with store.session() as db:
        return {row.trial: row for row in db.scalars(select(TrialLatency).where(TrialLatency.study == study))}
