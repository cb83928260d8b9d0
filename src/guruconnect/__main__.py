"""``python -m guruconnect``: the same CLI as the ``guruconnect`` command."""

from guruconnect.cli import main

main()
