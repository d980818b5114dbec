"""`python -m bnnbench`: the same as the `bnnbench` command."""
from .cli import main

main()
