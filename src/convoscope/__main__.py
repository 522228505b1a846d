"""``python -m convoscope`` runs the CLI."""

from convoscope.cli.main import app

app(prog_name="convoscope")
