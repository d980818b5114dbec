"""The `bnnbench` command run in-process, for tests that check its output and exit code."""
from __future__ import annotations

from bnnbench.cli.main import main


def run_main(capsys, *argv):
    """main(argv) in-process: (exit code, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
