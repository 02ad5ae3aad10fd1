"""Exceptions raised by locust-hyperfaas.

HyperFaaSError
├── ConfigError      a setting has a value that is not accepted
├── PlanError        a plan file cannot be read or is not a valid plan
├── SetupError       the leaf could not be reached or refused CreateFunction
└── SinkError        an output file (CSV or SQLite) cannot be opened or written
"""

from __future__ import annotations


class HyperFaaSError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(HyperFaaSError):
    """A setting has a value that is not accepted."""

    def __init__(
        self, setting: str, value: object, accepted: str, flag: str | None = None
    ) -> None:
        self.setting = setting
        self.value = value
        self.accepted = accepted
        self.flag = flag
        name = setting if flag is None else f"{setting} ({flag}) "
        equals = "=" if flag is None else "= "
        super().__init__(f"{name}{equals}{value!r} is not valid: expected {accepted}")


class PlanError(HyperFaaSError):
    """A plan file cannot be read or does not describe a valid plan."""


class SetupError(HyperFaaSError):
    """The leaf could not be reached, or it refused to create a function."""


class SinkError(HyperFaaSError):
    """An output file (CSV or SQLite database) cannot be opened or written."""
