"""Audit of QA datasets against their documents: coverage, concentration, position, convergence, markup
hijack, injection exposure, groundedness and duplicates (docs/audit.md)."""

from .config import AuditConfig
from .run import AuditResult, run_audit

__all__ = ["AuditConfig", "AuditResult", "run_audit"]
