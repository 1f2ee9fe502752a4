"""The database: one URL for Optuna's RDB storage and our own tables (``nas_*``).

Imports nothing of ours. Database errors are caught here and re-raised as ``StorageError`` with
a one-line message and the cause attached, so callers never see a driver traceback.
"""

from storage import latency, reference  # every table module: our tables are created together, on first use
from storage.contract import (
    DEVICE_IMPLIED, INTERRUPTED, LATENCY_CONSTRAINT, PARETO_METRICS, REFINE_BASELINE, REFINE_FINAL, REFINE_START,
    REWARD_METRICS, StudyRecord, TrialRecord,
    StoredTrial, device_identity, read_device, write_trial,
)
from storage.database import (
    DEFAULT_URL, FAULTS, StorageError, check_url, database_error, open_optuna_storage, require_database, resolve_url,
)
from storage.runs import RUN_KINDS, Run, add_run, list_runs
from storage.store import Store

__all__ = [
    "DEFAULT_URL", "DEVICE_IMPLIED", "FAULTS", "INTERRUPTED", "LATENCY_CONSTRAINT", "PARETO_METRICS", "REFINE_BASELINE", "REFINE_FINAL",
    "REFINE_START", "REWARD_METRICS", "RUN_KINDS", "Run",
    "StorageError", "Store", "StudyRecord", "TrialRecord", "add_run",
    "check_url", "database_error", "device_identity", "latency", "list_runs", "reference", "open_optuna_storage",
    "read_device", "require_database", "resolve_url", "StoredTrial", "write_trial",
]
