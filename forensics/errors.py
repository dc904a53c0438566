"""User-facing errors: one clear message, no traceback unless ``--debug``."""


class ForensicsError(Exception):
    """An error the user can act on (bad input, missing data, ambiguous instrument)."""


class InputError(ForensicsError):
    """A source file could not be used; the message names file, line and what was wrong."""

    def __init__(self, path, line, message):
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
