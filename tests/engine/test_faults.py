"""Bad input and real faults against the CLI: one line naming the problem and the fix, exit 2,
no traceback, no run folder created, nothing finished touched (issue: a run store you can
trust). Filesystem faults use a real tiny tmpfs where this machine lets the tests mount one."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cli_run import run_main

from bnnbench.engine.train import _CellRun, train_cell
from bnnbench.experiment.cell import CellConfig
from bnnbench.store import runstore
from bnnbench.store.reader import CellRecord


def one_line_error(code, err, message):
    err = err.split("\r")[-1]   # what a terminal shows once a progress bar has been erased
    assert code == 2, err
    assert err.startswith("bnnbench: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err


TRAIN = ["train", "--dataset", "digits", "--arch", "resnet20", "--binarizer", "xnor",
         "--device", "cpu", "--subset", "100"]


@pytest.mark.parametrize("extra, message", [
    (["--arch", "resnet2"], "unknown cifar arch 'resnet2' (dataset digits); known: resnet18"),
    (["--dataset", "cifar100"], "unknown dataset 'cifar100'; known: cifar10, digits"),
    (["--epochs", "0"], "epochs must be a number of epochs >= 1, got 0"),
    (["--budget", "-3"], "budget must be a fraction in (0, 1], got -3.0"),
    (["--budget", "1.5"], "budget must be a fraction in (0, 1], got 1.5"),
    (["--subset", "0"], "subset must be a number of images >= 1, got 0"),
    (["--param", "t_min=0"], "binarizer 'xnor' has no parameter 't_min'"),
    (["--binarizer", "irnet", "--param", "t_min=NaN"], "'t_min' must be a finite number"),
    (["--binarizer", "irnet", "--param", "t_max=inf"], "'t_max' must be a finite number"),
    (["--recipe", "lr=-1"], "recipe 'lr' must be >= 0.0, got -1.0"),
    (["--recipe", "lr=nan"], "recipe 'lr' must be a finite number"),
    (["--recipe", "epochs=0"], "recipe 'epochs' must be >= 1, got 0"),
    (["--recipe", "epoch=3"], "unknown recipe key 'epoch'"),
    (["--stage-recipe", "sine:lr=0.1"], "stages ['sine'] that binarizer 'xnor' does not have"),
    (["--device", "tpu"], "device 'tpu'"),
])
def test_bad_train_input_is_one_line_and_creates_nothing(capsys, tmp_path, extra, message):
    out = tmp_path / "cell"
    argv = TRAIN + extra + ["--out", str(out)]
    one_line_error(*run_main(capsys, *argv)[::2], message)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_says_so(capsys, tmp_path):
    out = tmp_path / "cell"
    one_line_error(*run_main(capsys, *TRAIN, "--device", "cuda", "--out", str(out))[::2],
                   "CUDA is not available on this machine")
    assert not out.exists()


def write_grid(tmp_path: Path, body: str, name="g.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent("""\
        datasets = ["digits"]
        archs = ["resnet20"]
        binarizers = ["xnor"]
        epochs = 1
        subset = 64
        """) + body)
    return path


@pytest.mark.parametrize("body, argv, message", [
    ('name = ""\n', [], 'g.toml:6: name: must be a folder name'),
    ('name = "../up"\n', [], 'name: must be a folder name'),
    ("[recipe]\nepochs = 0\n", [], "g.toml:7: recipe.epochs: recipe 'epochs' must be >= 1"),
    ("", ["--epochs", "0"], "--epochs: epochs must be a number of epochs >= 1, got 0"),
    ("", ["--budget", "-3"], "--budget: budget must be a fraction in (0, 1]"),
    ("", ["--max-concurrent", "0"], "--max-concurrent must be >= 1, got 0"),
])
def test_bad_grid_input_is_one_line(capsys, tmp_path, body, argv, message):
    path = write_grid(tmp_path, body)
    store = tmp_path / "store"
    one_line_error(*run_main(capsys, "run", "--grid", str(path), "--out", str(store),
                             *argv)[::2], message)


def test_a_grid_file_that_is_not_utf8(capsys, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('description = "ω0 sweep"\n'.encode("utf-16"))
    one_line_error(*run_main(capsys, "run", "--grid", str(path), "--dry-run")[::2],
                   f"{path}: not a UTF-8 text file")


def test_bench_checks_names_before_loading_anything(capsys):
    one_line_error(*run_main(capsys, "bench", "--arch", "resnet99")[::2],
                   "unknown CIFAR arch 'resnet99' for bench")
    one_line_error(*run_main(capsys, "bench", "--binarizer", "xnorr")[::2],
                   "unknown binarizer 'xnorr'")


def test_out_is_a_file_or_unwritable(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(*run_main(capsys, *TRAIN, "--out", str(afile))[::2], f"{afile}' is a file")
    one_line_error(*run_main(capsys, "report", str(tmp_path), "--out", str(afile))[::2],
                   f"{afile}' is a file")
    with pytest.raises(Exception, match="is a file, not a run folder"):   # the Python API too
        train_cell(_xnor(epochs=1), afile, progress=False)
    if Path("/sys").is_dir():   # a folder nobody may write, root included
        one_line_error(*run_main(capsys, *TRAIN, "--out", "/sys/bnnbench-test")[::2],
                       "cannot write /sys/bnnbench-test")


def test_cli_help_list_and_grid_errors_do_not_import_the_compiler():
    script = textwrap.dedent("""\
        import sys
        from bnnbench.cli.main import main
        for argv in (["--help"], ["list"], ["report", "--help"], ["run", "--grid", "nope"]):
            try:
                main(argv)
            except SystemExit:
                pass
        print("torch._dynamo" in sys.modules, "torch._inductor" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False", done.stderr


# --- a real tiny filesystem ------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _xnor(**kw):
    return CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", subset=100,
                      device="cpu", **kw)


def test_a_full_disk_is_named_keeps_the_checkpoint_and_resumes(capsys, tmp_path, monkeypatch):
    with tmpfs(tmp_path / "fs", "16m") as fs:
        out = fs / "cell"
        save = _CellRun._save_checkpoint

        def fill_after_first(self, optimizer):
            save(self, optimizer)
            if len(self.metrics) == 1:   # the disk fills up while epoch 2 trains
                with open(fs / "filler", "wb") as fh, contextlib.suppress(OSError):
                    while True:
                        fh.write(b"\0" * 65536)
        monkeypatch.setattr(_CellRun, "_save_checkpoint", fill_after_first)
        argv = TRAIN + ["--epochs", "3", "--out", str(out)]
        one_line_error(*run_main(capsys, *argv)[::2], "no space left on the device of")
        assert runstore.load_checkpoint(out / runstore.CHECKPOINT)["position"] == [0, 1]
        assert CellRecord(out).status == "partial" and not (out / runstore.ERROR_LOG).exists()
        monkeypatch.setattr(_CellRun, "_save_checkpoint", save)
        (fs / "filler").unlink()
        code, stdout, err = run_main(capsys, *argv)
        assert code == 0 and "finished" in stdout, err
        assert [r["epoch"] for r in runstore.read_metrics(out / runstore.METRICS)] == [0, 1, 2]
        assert not (out / runstore.ERROR_LOG).exists()


def test_a_finished_store_on_read_only_media_stays_reportable(capsys, tmp_path):
    with tmpfs(tmp_path / "fs", "32m") as fs:
        path = write_grid(tmp_path, "")
        from bnnbench.experiment import grid as grids
        cell = grids.load_grid(path).cells[0]
        store = fs / "store"
        train_cell(cell, store / cell.id, progress=False)
        before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        code, out, err = run_main(capsys, "run", "--grid", str(path), "--out", str(store))
        assert code == 0 and "1 finished" in out and "0 to run" in out, err
        code, out, err = run_main(capsys, "report", str(store), "--out",
                                  str(tmp_path / "report"), "--no-figures")
        assert code == 0 and "xnor" in out, err
        more = write_grid(tmp_path, "seeds = 2\n", name="more.toml")
        one_line_error(*run_main(capsys, "run", "--grid", str(more), "--out",
                                 str(store))[::2], "is read-only and 1 cell(s) still need")
        assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_threads_option_is_checked_and_used(capsys, tmp_path):
    out = tmp_path / "cell"
    one_line_error(*run_main(capsys, *TRAIN, "--threads", "0", "--out", str(out))[::2],
                   "threads must be a number >= 1, got 0")
    assert not out.exists()
    before = torch.get_num_threads()
    try:
        code, stdout, err = run_main(capsys, *TRAIN, "--epochs", "1", "--threads", "1",
                                     "--out", str(out))
        assert code == 0 and torch.get_num_threads() == 1, err
    finally:
        torch.set_num_threads(before)
