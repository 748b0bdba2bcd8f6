"""Command-line interface. Commands live in one module per concern; each registers on `app` (cli.app)
when imported here."""

from peftbench.cli import efficiency, experiments, listing
from peftbench.cli.app import app

__all__ = ["app", "efficiency", "experiments", "listing"]
