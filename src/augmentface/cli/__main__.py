"""``python -m augmentface.cli`` runs the command line."""

from augmentface.cli import app

app()
