"""`python -m imcsr_live` is the same as the `imcsr-live` command."""

from imcsr_live.cli import run_as_program

run_as_program()
