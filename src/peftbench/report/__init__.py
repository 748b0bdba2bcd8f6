"""`peftbench report DIR`: report.md, a self-contained report.html and summary.csv for one experiment."""

from peftbench.report.build import build, write
from peftbench.report.model import Report

__all__ = ["Report", "build", "write"]
