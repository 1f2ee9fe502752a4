"""The database: one URL for Optuna's RDB storage and, later, our own tables.

Imports nothing of ours. Database errors are caught here and re-raised as ``StorageError`` with
a one-line message and the cause attached, so callers never see a driver traceback.
"""

from storage.database import DEFAULT_URL, StorageError, check_url, open_optuna_storage, resolve_url

__all__ = ["DEFAULT_URL", "StorageError", "check_url", "open_optuna_storage", "resolve_url"]
