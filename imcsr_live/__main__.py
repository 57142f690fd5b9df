"""`python -m imcsr_live` is the same as the `imcsr-live` command."""

from imcsr_live.cli import main

main()
