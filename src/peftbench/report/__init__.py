"""Reports over finished run folders: `peftbench report DIR` writes report.md, a self-contained report.html
and summary.csv for one experiment; `peftbench compare DIR` prints its table."""

from peftbench.report.build import build, write
from peftbench.report.model import Report

__all__ = ["Report", "build", "write"]
