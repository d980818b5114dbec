"""Published reference numbers with their sources, installed as bnnbench.reference."""
