"""`python -m bnnbench`: the same as the `bnnbench` command."""
from .cli.main import main

main()
