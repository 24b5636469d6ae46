"""Audit of QA datasets against their documents: coverage, concentration, position, convergence, markup
hijack, injection exposure, groundedness and duplicates (docs/audit.md).

`run_audit` measures and returns an AuditResult; `write_report` renders one as report.html."""

from .config import AuditConfig
from .run import AuditResult, run_audit


def write_report(result: AuditResult, path, config: AuditConfig | None = None) -> None:
    """report.html of an audit result (imported on use: the report's figures need matplotlib)."""
    from .report import write_report as render

    render(result, path, config)


__all__ = ["AuditConfig", "AuditResult", "run_audit", "write_report"]
