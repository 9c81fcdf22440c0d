"""Exceptions and warnings raised by the emulator.

In strict mode (the default) a rule violation of level ``error`` found while a job
runs stops the job with a ``RuleViolation`` (or its subclasses for deadlock and
timeout); findings of level ``warning``, and every finding in lenient mode, are
issued as ``EmulatorWarning`` and listed in the job report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List

from qpu.errors import QPUError

if TYPE_CHECKING:  # pragma: no cover
    from .report import Finding


class EmulatorError(QPUError):
    """Base class of the emulator's errors (bad job parameters, rule violations ...)."""


class RuleViolation(EmulatorError):
    """A program broke one of the hardware's rules (``finding.rule`` is a qpu.isa.rules id)."""

    def __init__(self, finding: Finding, others: List[Finding] = None) -> None:  # type: ignore[assignment]
        self.finding = finding
        self.findings = [finding] + list(others or [])
        super().__init__(finding.message)

    @property
    def rule(self) -> str:
        return self.finding.rule


class DeadlockError(RuleViolation):
    """Every unfinished QPU waits on a semaphore or the mutex that no running QPU can release."""


class JobTimeoutError(RuleViolation):
    """The job ran longer than its timeout (in emulated time, or the wall-clock guard)."""


class EmulatorWarning(UserWarning):
    """A finding that does not stop the job (a warning-level rule, or lenient mode)."""
