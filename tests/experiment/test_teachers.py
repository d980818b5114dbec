"""Teachers: resolved into the student's id, added to grids, run first (also after a kill),
refused when unfinished, named on the command line, marked in the leaderboard."""
from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bnnbench import BnnbenchError
from bnnbench.cli import main as cli
from bnnbench.engine.teachers import TeacherNotReady
from bnnbench.experiment import grid as grids
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.resolve import ResolvedCell, resolve
from bnnbench.store import runstore
from bnnbench.store.reader import CellRecord

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cell(binarizer="reactnet", **kw) -> ResolvedCell:
    return resolve(CellConfig("digits", "resnet20", binarizer, epochs=1, subset=32,
                              device="cpu", **kw))


def test_the_teacher_is_part_of_the_students_identity():
    student = cell()
    (tid,) = student.teacher_ids
    fp = cell("fp")   # the default teacher: fp of the student's arch, seed 0, same epochs/subset
    assert tid == fp.id and [t.config for t in student.teachers] == [fp.config]
    assert [r["teacher"] for _, r in student.stages] == [tid, tid]
    # every student seed shares the seed-0 teacher
    assert cell(seed=3).teacher_ids == [tid]
    # another teacher, another student id; without distillation no teacher at all
    other = cell(recipe={"teacher": {"recipe": {"lr": 0.01}}})
    assert other.teacher_ids != [tid] and other.id != student.id
    plain = cell(recipe={"distill": "none", "teacher": {"arch": "resnet18"}})
    assert plain.teacher_ids == [] and "teacher" not in plain.stages[0][1]
    # any binarizer can distil; a teacher table names any cell of the dataset
    xnor = cell("xnor", recipe={"distill": "distribution", "teacher": {"arch": "vgg_small"}})
    assert xnor.teacher_ids[0].startswith("digits-vgg_small-fp-s0-")


@pytest.mark.parametrize("recipe, message", [
    ({"teacher": {"depth": 3}}, "recipe 'teacher' has no key 'depth'"),
    ({"teacher": {"seed": "zero"}}, "recipe 'teacher.seed' has the wrong type"),
    ({"distill": "kl"}, "recipe 'distill' must be none or a registered distillation loss"),
    ({"teacher": {"arch": "resnet50"}}, "teacher: unknown cifar arch 'resnet50'"),
    ({"teacher": {"binarizer": "reactnet"}}, "a teacher trains without a teacher"),
    ({"teacher": {"recipe": {"normalize": "cifar"}}}, "the teacher normalises inputs with "
                                                       "'cifar', the student with None"),
])
def test_bad_teachers_are_one_line(recipe, message):
    with pytest.raises(BnnbenchError, match=message) as info:
        cell(recipe=recipe)
    assert "\n" not in str(info.value)


def test_a_student_refuses_to_start_before_its_teacher(tmp_path):
    from bnnbench.engine.train import train_cell

    student = cell()
    with pytest.raises(TeacherNotReady, match="whose record in .* is new, not "
                                                       "finished: train the teacher first"):
        train_cell(student, tmp_path / student.id, progress=False)
    assert list(tmp_path.iterdir()) == []          # nothing written


TMP_GRID = """\
    datasets = ["digits"]
    archs = ["resnet20"]
    binarizers = ["reactnet"]
    seeds = 2
    epochs = 2          # the teacher's: killed after its first epoch
    subset = 96

    [binarizer.reactnet.stage.real_weights]
    epochs = 1
    [binarizer.reactnet.stage.binary]
    epochs = 1
    """


def write(text: str, folder: Path) -> Path:
    path = folder / "kd.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_adds_each_teacher_once_first(tmp_path):
    grid = grids.load_grid(write(TMP_GRID, tmp_path))
    names = [(c.config.binarizer["name"], c.config.seed) for c in grid.cells]
    assert names == [("fp", 0), ("reactnet", 0), ("reactnet", 1)]
    assert grid.cells[1].teacher_ids == [grid.cells[0].id] == grid.cells[2].teacher_ids


@pytest.mark.slow
def test_killed_while_the_teacher_trains_then_rerun(tmp_path, capsys):
    """The driver is killed while the teacher trains (no student has started); the rerun
    resumes the teacher from its checkpoint, then trains both students, each after it."""
    from processes import kill_session

    path = write(TMP_GRID, tmp_path)
    grid = grids.load_grid(path)
    teacher, students = grid.cells[0], grid.cells[1:]
    store = tmp_path / "store"
    tdir = store / teacher.id
    command = [sys.executable, "-m", "bnnbench", "run", "--grid", str(path), "--out", str(store)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 150
        while not runstore.read_metrics(tdir / runstore.METRICS):   # its first epoch is kept
            assert driver.poll() is None and time.time() < deadline, "the teacher never trained"
            time.sleep(0.05)
    finally:
        kill_session(driver)
    first_epoch = runstore.read_metrics(tdir / runstore.METRICS)[0]
    assert CellRecord(tdir).status == "partial"
    assert [p.name for p in store.iterdir() if not p.name.startswith(".")] == [tdir.name]

    cli.main(["run", "--grid", str(path), "--out", str(store)])    # the same command again
    out = capsys.readouterr().out
    assert "1 resume from a checkpoint" in out
    rows = runstore.read_metrics(tdir / runstore.METRICS)
    assert [r["global_epoch"] for r in rows] == [0, 1] and rows[0] == first_epoch
    folders = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert folders == sorted(c.id for c in grid.cells)      # the teacher once
    teacher_done = (tdir / runstore.RESULT).stat().st_mtime
    for student in students:
        folder = store / student.id
        assert runstore.read_json(folder / runstore.RESULT)["status"] == "finished"
        config = runstore.read_json(folder / runstore.CONFIG)
        assert [s["recipe"]["teacher"] for s in config["stages"]] == [tdir.name] * 2
        created = datetime.datetime.fromisoformat(config["created"]).timestamp()
        assert created >= teacher_done            # the student started after its teacher

    cli.main(["run", "--grid", str(path), "--out", str(store), "--dry-run"])
    dry = capsys.readouterr().out
    assert "teacher" in dry and dry.count(tdir.name) == 3   # its own row and two students'

    from bnnbench.report import leaderboard as report

    made = report.write_report([store], tmp_path / "report", figures=False, counts=False)
    board = made["leaderboard"].set_index("binarizer")
    assert board.loc["reactnet", "teacher"] == tdir.name and board.loc["fp", "teacher"] == ""
    assert board.loc["reactnet", "kd"] and not board.loc["fp", "kd"]
    assert "| reactnet § |" in made["markdown"] and "§ knowledge distillation" in made["markdown"]


def test_train_names_a_teacher_by_folder_or_trains_it_first(tmp_path, capsys):
    common = ["--dataset", "digits", "--arch", "resnet20", "--epochs", "1", "--subset", "32",
              "--device", "cpu", "--threads", "1"]
    cli.main(["train", *common, "--binarizer", "fp", "--seed", "5", "--out", str(tmp_path / "t")])
    teacher_id = runstore.read_json(tmp_path / "t" / runstore.CONFIG)["cell_id"]
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "t").iterdir()}
    cli.main(["train", *common, "--binarizer", "xnor", "--teacher", str(tmp_path / "t"),
              "--out", str(tmp_path / "s")])
    config = runstore.read_json(tmp_path / "s" / runstore.CONFIG)
    assert config["stages"][0]["recipe"]["teacher"] == teacher_id
    assert config["stages"][0]["recipe"]["distill"] == "distribution"
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "t").iterdir()} == before

    # no --teacher: the teacher (fp, seed 0) trains first, beside the student's folder
    capsys.readouterr()
    cli.main(["train", *common, "--binarizer", "xnor", "--recipe", "distill=distribution",
              "--out", str(tmp_path / "runs" / "s")])
    (tid,) = cell("xnor", recipe={"distill": "distribution"}).teacher_ids
    assert f"training teacher {tid} first" in capsys.readouterr().out
    assert CellRecord(tmp_path / "runs" / tid).status == "finished"
    assert CellRecord(tmp_path / "runs" / "s").status == "finished"


def test_a_bad_teacher_in_a_grid_names_its_line(tmp_path):
    path = write(TMP_GRID + textwrap.dedent("""\
        [binarizer.reactnet.recipe]
        teacher = {arch = "resnet18", recipe = {lr = -1.0}}
        """), tmp_path)
    with pytest.raises(BnnbenchError, match=r"kd.toml:13: teacher: .*teacher: recipe: "
                                            r"recipe 'lr' must be >= 0.0, got -1.0"):
        grids.load_grid(path)
