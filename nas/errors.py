"""One exception hierarchy; the CLI turns each into one line and exit code 2."""


class NasError(Exception):
    """Something the user can fix: the message says what is wrong and what is accepted."""


class UsageError(NasError):
    """A flag or argument has a value nas cannot use."""


class DataError(NasError):
    """A dataset folder is missing, empty or unreadable."""


class StudyError(NasError):
    """A study is missing, ambiguous, or was created with other settings."""


class TrainingDiverged(Exception):
    """The proxy training produced a non-finite loss; the trial is recorded as FAIL."""
