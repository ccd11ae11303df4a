"""``python -m adsentinel`` = the ``adsentinel`` command."""

from adsentinel.cli import main

main()
