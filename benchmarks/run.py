"""Training-speed benchmark: `python benchmarks/run.py [options]` is `bnnbench bench [options]`.

See benchmarks/README.md for the method and the latest table; `--help` for the options.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnbench.cli.main import main  # noqa: E402

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
