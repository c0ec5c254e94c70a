"""``python -m mailwarden.cli``: the same as the ``mailwarden`` command."""

from .app import main

main()
