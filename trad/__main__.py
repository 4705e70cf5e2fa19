"""`python -m trad` runs the `trad` command."""

from trad.cli import main

main()
