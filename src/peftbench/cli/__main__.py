from peftbench.cli import app

app()
