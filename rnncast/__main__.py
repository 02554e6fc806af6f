"""``python -m rnncast``: the same as the ``rnncast`` command."""

from rnncast.cli import run

run()
