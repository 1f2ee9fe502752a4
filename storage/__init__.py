"""The database: one URL for Optuna's RDB storage and our own tables (``nas_*``).

Imports nothing of ours. Database errors are caught here and re-raised as ``StorageError`` with
a one-line message and the cause attached, so callers never see a driver traceback.
"""

from storage import latency, reference  # every table module: our tables are created together, on first use
from storage.contract import (
    INTERRUPTED, LATENCY_CONSTRAINT, PARETO_METRICS, REWARD_METRICS, StudyRecord, TrialRecord, write_trial,
)
from storage.database import DEFAULT_URL, StorageError, check_url, open_optuna_storage, resolve_url
from storage.runs import RUN_KINDS, Run, add_run, list_runs
from storage.store import Store

__all__ = [
    "DEFAULT_URL", "INTERRUPTED", "LATENCY_CONSTRAINT", "PARETO_METRICS", "REWARD_METRICS", "RUN_KINDS", "Run",
    "StorageError", "Store", "StudyRecord", "TrialRecord", "add_run",
    "check_url", "latency", "list_runs", "reference", "open_optuna_storage", "resolve_url", "write_trial",
]
