"""``python -m lakefmt``: the command line."""

from lakefmt.cli import main

main()
