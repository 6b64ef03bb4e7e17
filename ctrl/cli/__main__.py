"""`python -m ctrl.cli`, as the `ctrl` command."""

from ctrl.cli import console

console()
