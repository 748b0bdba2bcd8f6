"""`python -m peftbench`: the same commands as the `peftbench` script."""

from peftbench.cli import app

app()
