"""Reference accuracies (long training) and how each accuracy estimator ranks against them.

A reference is built once per space and data and reused by every estimator comparison: one row per
(architecture, training seed), stored as each training finishes, so a killed build resumes where it
stopped. An estimator's ranking against a reference is stored beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.schema import Base, UTCDateTime, upsert, utcnow
from storage.store import Store


class ReferenceResult(Base):
    """One architecture trained with the reference's long budget and one seed."""

    __tablename__ = "nas_reference_results"
    __table_args__ = (UniqueConstraint("reference", "label", "seed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(256), index=True)
    label: Mapped[str] = mapped_column(String(128))  # a seed network's name, or "sample-<i>"
    seed: Mapped[int] = mapped_column(Integer)  # the training seed
    architecture: Mapped[dict[str, Any]] = mapped_column(JSON)  # the genotype's dict
    accuracy: Mapped[float | None] = mapped_column(Float)  # None: training failed (see settings' fail_reason)
    train_s: Mapped[float] = mapped_column(Float)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # the training recipe, the same for every row
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EstimatorRanking(Base):
    """How one estimator's scores rank the reference's architectures."""

    __tablename__ = "nas_estimator_rankings"
    __table_args__ = (UniqueConstraint("reference", "estimator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(256), index=True)
    estimator: Mapped[str] = mapped_column(String(128))  # name and settings in one label, e.g. "train:epochs=2"
    kendall_tau: Mapped[float | None] = mapped_column(Float)
    spearman: Mapped[float | None] = mapped_column(Float)
    snr: Mapped[float | None] = mapped_column(Float)  # spread across architectures / spread across seeds
    seconds_per_arch: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)  # label -> [score per seed]
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def add_result(store: Store, reference: str, label: str, seed: int, **fields: Any) -> None:
    """Store (or replace) one training of the reference."""
    with store.session() as db:
        upsert(db, ReferenceResult, {"reference": reference, "label": label, "seed": seed}, fields)


def results(store: Store, reference: str) -> list[ReferenceResult]:
    """The reference's trainings in the order they were stored (detached rows)."""
    with store.session() as db:
        return list(db.scalars(select(ReferenceResult).where(ReferenceResult.reference == reference)
                               .order_by(ReferenceResult.id)))


def references(store: Store) -> list[str]:
    with store.session() as db:
        return list(db.scalars(select(ReferenceResult.reference).distinct().order_by(ReferenceResult.reference)))


def save_ranking(store: Store, reference: str, estimator: str, **fields: Any) -> None:
    with store.session() as db:
        upsert(db, EstimatorRanking, {"reference": reference, "estimator": estimator}, {**fields, "updated_at": utcnow()})


def rankings(store: Store, reference: str) -> list[EstimatorRanking]:
    with store.session() as db:
        return list(db.scalars(select(EstimatorRanking).where(EstimatorRanking.reference == reference)
                               .order_by(EstimatorRanking.id)))


def rankings_of(store: Store, estimator: str) -> list[EstimatorRanking]:
    """Every stored ranking of ``estimator`` (against any reference), newest first."""
    with store.session() as db:
        return list(db.scalars(select(EstimatorRanking).where(EstimatorRanking.estimator == estimator)
                               .order_by(EstimatorRanking.updated_at.desc())))
