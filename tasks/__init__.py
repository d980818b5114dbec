"""The shipped grid files, installed as bnnbench.tasks (found by `--grid NAME`)."""
