"""The `bnnbench` command: the click group, its commands registered from their modules (list and
summary in cli_catalog, train in cli_train, run and report in cli_grid, bench in cli_bench, eval
and export in cli_model), and `main`, which turns user errors and signals into one line.

User errors (BnnbenchError) print as one line and exit 2; `--debug` shows the traceback.
"""
from __future__ import annotations

import signal
import sys
import threading

import click

from ..errors import ENVIRONMENT, BnnbenchError, describe_os_error
from ..version import __version__
from . import bench as cli_bench
from . import catalog as cli_catalog
from . import grid as cli_grid
from . import model as cli_model
from . import train as cli_train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnnbench")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
@click.pass_context
def cli(ctx, debug):
    """bnnbench: benchmark binarizers of Binary Neural Networks."""
    ctx.obj = {"debug": debug}


for command in (cli_catalog.list_cmd, cli_catalog.summary_cmd, cli_train.train_cmd,
                cli_grid.run_cmd, cli_grid.report_cmd, cli_bench.bench_cmd, cli_model.eval_cmd,
                cli_model.export_cmd):
    cli.add_command(command)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what cluster schedulers send), raised like Ctrl-C so that everything unwinds
    the same way (Ray shut down, locks released), then exit 143."""


TERMINATED: list[int] = []   # SIGTERM seen (libraries may re-raise it as a plain Ctrl-C)


def _terminate(signum, frame):
    TERMINATED.append(signum)
    raise Terminated()


def main(argv=None):
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        cli.main(args=argv, prog_name="bnnbench", standalone_mode=False)
    except click.exceptions.Abort:
        term = bool(TERMINATED)
        click.echo(f"{'terminated (SIGTERM)' if term else 'interrupted'}: rerun the same command "
                   "to resume (finished epochs and cells are kept)", err=True)
        sys.exit(143 if term else 130)
    except click.UsageError as exc:   # one line too, with where to read the options
        where = exc.ctx.command_path if exc.ctx else "bnnbench"
        click.echo(f"bnnbench: error: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BnnbenchError as exc:
        if debug:
            raise
        click.echo(f"bnnbench: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:   # the machine's fault (full disk, read-only folder): one line too
        if debug or exc.errno not in ENVIRONMENT:
            raise
        click.echo(f"bnnbench: error: {describe_os_error(exc)}", err=True)
        sys.exit(2)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
