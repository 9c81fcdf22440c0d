"""Results of the static checker: findings, the report, the exception."""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence

from ..errors import QPUError, SourceLocation
from ..isa.rules import Level
from ..program import Program

# --------------------------------------------------------------------------------------------
# Public result types
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One violated rule at one instruction."""

    rule: str
    level: Level
    index: int                 # instruction index in the program
    instruction: str           # its disassembly
    message: str               # what is wrong here, naming registers and other instructions
    citation: str              # where the rule comes from (guide page, addendum section)
    location: Optional[SourceLocation] = None  # kernel source file:line when known

    @property
    def address(self) -> int:
        """Byte offset of the instruction from the start of the program."""
        return 8 * self.index

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location is not None else ""
        return (f"{where}{self.level.value}[{self.rule}] {self.address:#06x} (#{self.index}) "
                f"`{self.instruction}`: {self.message} [{self.citation}]")


class CheckError(QPUError):
    """A program violates error-level rules; ``findings`` lists them."""

    def __init__(self, findings: Sequence[Finding], name: str = "") -> None:
        self.findings = list(findings)
        what = f" in {name}" if name else ""
        lines = [f"{len(self.findings)} error(s) found by the static checker{what}:"]
        lines += [f"  {f}" for f in self.findings]
        super().__init__("\n".join(lines))


@dataclass
class CheckReport:
    """Everything ``check`` found, in instruction order."""

    findings: List[Finding] = field(default_factory=list)
    program: Optional[Program] = None

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    @property
    def notes(self) -> List[Finding]:
        return [f for f in self.findings if f.level is Level.INFO]

    @property
    def ok(self) -> bool:
        """True when no error-level rule is violated (warnings and notes allowed)."""
        return not self.errors

    def by_rule(self, rule_id: str) -> List[Finding]:
        return [f for f in self.findings if f.rule == rule_id]

    def summary(self) -> str:
        return f"{len(self.errors)} error(s), {len(self.warnings)} warning(s), {len(self.notes)} note(s)"

    def raise_for_errors(self) -> CheckReport:
        """Raise CheckError if there is any error; return the report otherwise."""
        errors = self.errors
        if errors:
            raise CheckError(errors, self.program.name if self.program is not None else "")
        return self

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)



_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}
