"""The frozen build's entry point: the whole ``guruconnect`` command."""

from guruconnect.cli import main

main()
