"""``python3 -m mixpath``: the ``mixpath`` command, for environments whose scripts folder is not on PATH."""

from mixpath.cli import main

main()
