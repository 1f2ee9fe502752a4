"""One exception hierarchy; the CLI turns each into one line and an exit code (all of them here)."""

EXIT_USAGE = 2  # a flag, argument, file or URL nas cannot use: fix the command line
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): what finished is stored; the same command resumes
EXIT_TERMINATED = 143  # SIGTERM: the same as Ctrl-C
EXIT_DATABASE = {  # a database fault, by ``storage.StorageError.fault``; a malformed URL is a usage error
    "usage": EXIT_USAGE,
    "unreachable": 3,  # server down, wrong host/port/database name, connection lost
    "auth": 4,  # wrong user or password
    "corrupt": 5,  # a truncated or corrupted SQLite file, or a file that is no database
    "read_only": 6,  # a read-only database file or folder
    "full": 7,  # the disk (or the database) is full
}
EXIT_NOT_REACHED = 8  # `nas refine` stopped at the closest network: no proposal reaches the target (stored)


class NasError(Exception):
    """Something the user can fix: the message says what is wrong and what is accepted."""


class UsageError(NasError):
    """A flag or argument has a value nas cannot use."""


class DataError(NasError):
    """A dataset folder is missing, empty or unreadable."""


class StudyError(NasError):
    """A study is missing, ambiguous, or was created with other settings."""


class WorkerError(NasError):
    """A worker process of a parallel search stopped with an error (it said why in its own line)."""


class UnbuildableArchitecture(Exception):
    """timm cannot build a trial's architecture; the trial is recorded as FAIL and the search goes on."""


class MeasurementFailed(Exception):
    """The latency-measuring process stopped or could not time a network; the trial is recorded as FAIL."""


class TrainingDiverged(Exception):
    """The proxy training produced a non-finite loss; the trial is recorded as FAIL."""
