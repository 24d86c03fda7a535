"""``python -m codecbench`` runs the command line."""

from codecbench.cli import cli

cli()
