"""The errors a user can fix: a stage ends with `error: <message>` and exit status 2 on these (runtime.stage_errors),
and keeps its traceback on anything else, which is a bug."""


class ParamsError(ValueError):
    """The parameter file (or a stage's command line) asks for something invalid or unplanned."""


class DataError(RuntimeError):
    """A dataset is missing, corrupt or misconfigured; the message says what to do."""


class ArtifactError(RuntimeError):
    """An artifact on disk is unreadable or not what its reader expects; the message names the stage to rerun."""


class NonFiniteError(RuntimeError):
    """Condensation diverged (a loss or an image became nan or inf); its last good checkpoint, if any, is kept."""


class OutputError(RuntimeError):
    """An output cannot be written: its folder is read-only or not ours, or its file system is full. Raised before
    the work starts where the folder is checked, and in place of the OSError where a write fails mid-run."""


class MethodError(RuntimeError):
    """A plug-in method raised, or returned what does not fit its cell; its own traceback is in the job's log."""
