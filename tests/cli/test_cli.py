"""`bnnbench list` and the CLI's error contract, plugins from a file and from an entry point.

User errors print one line on stderr and exit 2 without a traceback (a traceback with --debug).
Most checks run in-process (CliRunner or `main(argv)`); a few run the real command in a
subprocess for the exit code, the absence of a traceback and entry-point discovery.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cli_run import run_main
from click.testing import CliRunner

from bnnbench import BinaryConv2d, BnnbenchError
from bnnbench.api import registry
from bnnbench.cli.main import cli, main
from registries import forget, isolate

BUILTINS = ["biper", "bireal", "irnet", "reactnet", "recu", "sign_ste", "xnor"]
PLUGIN = '''
from bnnbench import Binarizer, approx_sign, register, sign_clipped_ste


@register("{name}")
class Thirdparty(Binarizer):
    """A third-party binarizer: sign weights (clipped STE), ApproxSign activations."""
    paper = "A plugin paper"
    year = 2025
    scale: float = 1.0

    def weight(self, w):
        return self.scale * sign_clipped_ste(w)

    def activation(self, x):
        return approx_sign(x)
'''


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    isolate(monkeypatch)


def bnnbench_cmd() -> list[str]:
    """The installed console script next to this interpreter, else `python -m bnnbench`."""
    script = Path(sys.executable).with_name("bnnbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bnnbench"]




def table(out: str) -> dict[str, str]:
    """`bnnbench list` rows by name."""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "paper", "year", "stages", "origin"]
    return {line.split()[0]: line for line in lines[1:]}


def write_plugin(tmp_path: Path, name: str) -> Path:
    f = tmp_path / f"{name}_plugin.py"
    f.write_text(PLUGIN.format(name=name))
    return f


def forward_backward(name):
    conv = BinaryConv2d(2, 3, 3, padding=1, binarizer=name)
    x = torch.randn(2, 2, 4, 4, requires_grad=True)
    conv(x).square().sum().backward()
    return conv, x


def test_list_shows_the_builtins():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    for name in BUILTINS:
        assert name in rows and rows[name].endswith("built-in")
    assert "sine→binary" in rows["biper"] and "2024" in rows["biper"]


def test_list_names_shows_resolved_parameters():
    result = CliRunner().invoke(cli, ["list", "biper", "irnet", "--param", "t_min=0.001"])
    assert result.exit_code != 0                     # --param applies to every NAME: biper lacks it
    result = CliRunner().invoke(cli, ["list", "biper", "--param", "omega0=30"])
    assert result.exit_code == 0, result.output
    assert "omega0=30.0, reg_tau=0.037" in result.output
    assert "stages: sine → binary" in result.output and "spec: biper" in result.output


def test_plugin_file_is_listed_and_trains(tmp_path, capsys, clean_registry):
    f = write_plugin(tmp_path, "cli_file_plugin")
    code, out, err = run_main(capsys, "list", "--plugin", str(f))
    assert code == 0 and err == ""
    rows = table(out)
    assert rows["cli_file_plugin"].endswith(f"file {f.resolve()}")
    assert "A plugin paper" in rows["cli_file_plugin"] and set(BUILTINS) <= set(rows)
    conv, x = forward_backward("cli_file_plugin")
    assert conv.weight.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    code, out, _ = run_main(capsys, "list", "cli_file_plugin", "--param", "scale=2",
                            "--plugin", str(f))
    assert code == 0 and "scale=2.0" in out and "origin: file" in out


BAD_PLUGINS = {
    "fails_to_import": ("import no_such_module_xyz\n",
                        "failed to import: ModuleNotFoundError"),
    "not_a_binarizer": ("from bnnbench import register\n@register('nab')\nclass N:\n    pass\n",
                        "does not subclass bnnbench.Binarizer"),
}


@pytest.mark.parametrize("argv, message", [
    (["list", "xnorr"], "unknown binarizer 'xnorr'; known: biper, bireal"),
    (["list", "biper", "--param", "omega=3"], "binarizer 'biper' has no parameter 'omega'"),
    (["list", "biper", "--param", "omega0=fast"], "'omega0' must be float"),
    (["list", "--plugin", "{tmp}/missing.py"], "plugin file not found"),
    (["list", "--plugin", "{fails_to_import}"], BAD_PLUGINS["fails_to_import"][1]),
    (["list", "--plugin", "{not_a_binarizer}"], BAD_PLUGINS["not_a_binarizer"][1]),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, capsys, clean_registry, argv,
                                                    message):
    paths = {"tmp": tmp_path}
    for key, (body, _) in BAD_PLUGINS.items():
        paths[key] = tmp_path / f"{key}.py"
        paths[key].write_text(body)
    argv = [a.format(**paths) for a in argv]
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("bnnbench: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(BnnbenchError, match=message.split(":")[0]):
        main(["--debug", *argv])                   # --debug lets the exception (and trace) out


@pytest.mark.slow
def test_real_command_exit_code_and_traceback_only_with_debug(tmp_path):
    """The installed command and `python -m bnnbench`, run concurrently to keep this fast (the
    success path runs for real in test_entry_point_plugin_is_discovered)."""
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    runs = {
        "plain": bnnbench_cmd() + ["list", "--plugin", str(bad)],
        "debug": [sys.executable, "-m", "bnnbench", "--debug", "list", "--plugin", str(bad)],
    }
    procs = {k: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, cmd in runs.items()}
    res = {k: (p.wait(timeout=120), *p.communicate()) for k, p in procs.items()}
    code, out, err = res["plain"]
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"bnnbench: error: plugin file {bad.resolve()} failed to import: RuntimeError: boom"]
    code, out, err = res["debug"]
    assert code != 0 and "Traceback" in err and "RuntimeError: boom" in err


@pytest.mark.slow
def test_entry_point_plugin_is_discovered(tmp_path):
    """A real package with a `bnnbench.binarizers` entry point, installed with pip --target."""
    pkg, site = tmp_path / "pkg", tmp_path / "site"
    pkg.mkdir()
    (pkg / "bnnbench_ep_test.py").write_text(PLUGIN.format(name="ep_plugin"))
    (pkg / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "bnnbench-ep-test"
        version = "0.0.1"

        [project.entry-points."bnnbench.binarizers"]
        ep_plugin = "bnnbench_ep_test"

        [tool.setuptools]
        py-modules = ["bnnbench_ep_test"]
    '''))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "--disable-pip-version-check", "--target", str(site),
                    str(pkg)], check=True, capture_output=True, cwd=tmp_path)
    script = textwrap.dedent('''
        import runpy, sys
        import torch
        from bnnbench import BinaryConv2d
        sys.argv = ["bnnbench", "list"]
        runpy.run_module("bnnbench", run_name="__main__")    # python -m bnnbench list
        conv = BinaryConv2d(2, 3, 3, padding=1, binarizer="ep_plugin")
        x = torch.randn(2, 2, 4, 4, requires_grad=True)
        conv(x).square().sum().backward()
        print("backward", bool(conv.weight.grad.abs().sum() > 0), bool(x.grad.abs().sum() > 0))
    ''')
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = table(proc.stdout.rsplit("\n", 2)[0])
    assert "entry point bnnbench_ep_test (bnnbench" in rows["ep_plugin"]
    assert set(BUILTINS) <= set(rows)
    assert proc.stdout.strip().endswith("backward True True")


def test_list_recipe_prints_what_each_stage_trains_with(capsys):
    code, out, err = run_main(capsys, "list", "biper", "--recipe", "cifar10")
    assert code == 0, err
    sine, binary = out.split("stage binary:")
    assert "epochs=600" in sine and "binarizer: omega0=20.0, reg_tau=0.037" in sine
    assert "epochs=299" in binary and "start_epoch=1" in binary
    assert "binarizer: omega0=20.0, reg_tau=0.0468" in binary
    from bnnbench.experiment.cell import CellConfig
    from bnnbench.experiment.resolve import resolve
    assert resolve(CellConfig(dataset="cifar10", arch="resnet20", binarizer="biper")).id in out
    code, out, err = run_main(capsys, "list", "irnet", "--recipe", "cifar10", "--arch",
                              "vgg_small", "--param", "t_max=5")
    assert code == 0 and "t_min=0.1, t_max=5.0" in out and "lr=0.007" in out
    code, out, err = run_main(capsys, "list", "biper", "--recipe", "cifar100")
    assert code == 2 and "unknown dataset 'cifar100'" in err and err.count("\n") == 1


def test_report_finds_a_plugin_from_the_run_record(tmp_path, capsys, clean_registry):
    f = write_plugin(tmp_path, "recorded_plugin")
    out = tmp_path / "store" / "cell"
    code, _, err = run_main(capsys, "train", "--dataset", "digits", "--arch", "resnet20",
                            "--binarizer", "recorded_plugin", "--plugin", str(f), "--epochs",
                            "1", "--subset", "64", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    forget(registry.BINARIZERS, "recorded_plugin")     # a new session: nothing loaded
    for name in [m for m in sys.modules if m.startswith("bnnbench_plugin_recorded")]:
        del sys.modules[name]
    code, csv, err = run_main(capsys, "report", str(out.parent), "--out",
                              str(tmp_path / "report"), "--no-figures", "--format", "csv")
    assert code == 0, err
    import io

    import pandas as pd
    row = pd.read_csv(io.StringIO(csv)).set_index("binarizer").loc["recorded_plugin"]
    assert row["n_seeds"] == 1 and row["bops"] > 0 and row["n_stale"] == 0
