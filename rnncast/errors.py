"""The errors a user can see, each carrying the exit code the CLI returns for it.

Exit codes (README.md documents them): 0 success, 1 unexpected failure, 2 usage
or configuration error, 3 data error, 4 model or artifact error, 5 training failed,
6 an output could not be written, 7 another run is writing the same output,
128 + N stopped by signal N (130 SIGINT, 143 SIGTERM).
"""


class RnncastError(Exception):
    """Base of every error meant for the user; anything else is a bug (exit 1)."""

    exit_code = 1


class ConfigError(RnncastError):
    """A setting is invalid: wrong value, unknown key, conflicting options."""

    exit_code = 2


class DataError(RnncastError):
    """The input data cannot be used as it is: the message names file, column and series."""

    exit_code = 3


class ArtifactError(RnncastError):
    """A model directory is missing, incompatible, incomplete or tampered with."""

    exit_code = 4


class TrainingDiverged(RnncastError):
    """Training produced a non-finite loss and stopped."""

    exit_code = 5


class OutputError(RnncastError):
    """An output could not be written (disk full, read-only, no permission); the
    previous output, if any, is left as it was."""

    exit_code = 6


class Busy(RnncastError):
    """Another run holds the lock on the same output; nothing was done."""

    exit_code = 7


class Interrupted(RnncastError):
    """A run was stopped by a signal after saving what it could."""

    exit_code = 130

    def __init__(self, message: str, signal_number: int = 2, polite: bool = False) -> None:
        super().__init__(message)
        # A stop the run asked for and reached cleanly (after a batch), rather than
        # one forced by a second signal.
        self.polite = polite
        # The shell's convention for "killed by signal N", so cron wrappers and
        # supervisors see a SIGTERM (timeout, shutdown) as one.
        self.exit_code = 128 + signal_number
