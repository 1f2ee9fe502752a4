"""The database: one URL for Optuna's RDB storage and our own tables (``nas_*``).

Imports nothing of ours. Database errors are caught here and re-raised as ``StorageError`` with
a one-line message and the cause attached, so callers never see a driver traceback.
"""

from storage.database import DEFAULT_URL, StorageError, check_url, open_optuna_storage, resolve_url
from storage import latency
from storage.runs import RUN_KINDS, add_run, list_runs
from storage.schema import session

__all__ = [
    "DEFAULT_URL", "RUN_KINDS", "StorageError", "add_run", "check_url", "list_runs", "open_optuna_storage", "resolve_url",
    "latency", "session",
]
