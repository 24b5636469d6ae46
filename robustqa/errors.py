"""User-facing errors. The CLI prints these on one line and exits non-zero, without a traceback."""


class RobustQAError(Exception):
    """Base class for errors caused by input, configuration or an external service, not by a bug."""


class InputError(RobustQAError):
    """A document, dataset or config file cannot be read; the message names the file (and line)."""


class ConfigError(RobustQAError):
    """An unknown strategy, unknown config key, or a value of the wrong type."""


class BackendError(RobustQAError):
    """A language-model backend failed for good (retries exhausted, server down, garbage output)."""
