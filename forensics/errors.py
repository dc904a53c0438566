"""User-facing errors: one clear message, no traceback unless ``--debug``."""


class ForensicsError(Exception):
    """An error the user can act on (bad input, missing data, ambiguous instrument)."""
