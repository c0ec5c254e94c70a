"""``python -m mailwarden.cli``: the same as the ``mailwarden`` command."""

from .app import main

if __name__ == "__main__":  # not when serve's delivery process (spawned) re-imports the main module
    main()
