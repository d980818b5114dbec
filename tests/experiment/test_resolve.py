"""A cell resolved once: its id hashes exactly what trains (cell.FIELDS), its teachers are
resolved cells, and the value cannot be changed behind its holders' backs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import pytest
from registries import isolate

from bnnbench.experiment.cell import FIELDS, RUN_ONLY, CellConfig
from bnnbench.experiment.recipe import stage_recipes
from bnnbench.experiment.resolve import resolve
from bnnbench.experiment.teachers import DEFAULTS

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "atan_anneal.py"
BASE = CellConfig("digits", "resnet20", "xnor", epochs=2, subset=64)
# for each field, another valid value than BASE's
OTHER = {"dataset": "cifar10", "arch": "vgg_small", "binarizer": "sign_ste", "seed": 1,
         "recipe": {"lr": 0.01}, "stage_recipes": {"binary": {"lr": 0.02}}, "epochs": 3,
         "total_epochs": 3, "budget": 0.5, "subset": 32, "data_dir": "/elsewhere",
         "compile": True, "device": "cpu", "plugins": [str(PLUGIN)]}


def test_fields_name_every_field_of_a_cell_once():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(CellConfig)] == list(OTHER)


@pytest.mark.parametrize("name", list(OTHER))
def test_the_id_changes_with_a_field_exactly_when_it_trains(name, monkeypatch):
    isolate(monkeypatch)                          # the plugin's binarizer vanishes after it
    monkeypatch.delitem(sys.modules, "bnnbench_plugin_atan_anneal", raising=False)
    changed = resolve(dataclasses.replace(BASE, **{name: OTHER[name]}))
    assert (changed.id != resolve(BASE).id) == (name not in RUN_ONLY)


def test_the_id_hashes_the_axes_the_data_and_the_resolved_stages():
    """The hash input of every id ever recorded: changing it would orphan every run folder."""
    cfg = CellConfig("digits", "resnet20", {"name": "biper", "omega0": 10}, seed=2, subset=64,
                     recipe={"lr": 0.05}, budget=0.5)
    cell = resolve(cfg)
    keyed = {"dataset": "digits", "arch": "resnet20", "binarizer": "biper", "seed": 2,
             "subset": 64, "stages": [[s, r] for s, r in stage_recipes(cfg.resolved())]}
    digest = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    assert cell.id == f"digits-resnet20-biper-s2-{digest}"
    assert cell.planned_epochs == sum(r["epochs"] for _, r in cell.stages) > 0
    assert cell.config.binarizer == {"name": "biper", "omega0": 10.0} and cell.given is cfg


def test_a_teacher_is_a_resolved_cell_with_its_students_inherited_fields():
    student = resolve(CellConfig("digits", "resnet20", "reactnet", seed=3, epochs=1, subset=32,
                                 device="cpu", recipe={"lr": 0.01}))
    (teacher,) = student.teachers
    assert teacher == resolve(teacher.config) and teacher.teachers == ()
    assert [r["teacher"] for _, r in student.stages] == [teacher.id] * 2
    plain = CellConfig(student.config.dataset, student.config.arch)   # the fields' defaults
    for name, field in FIELDS.items():
        expected = (getattr(student.config, name) if field.teacher == "student"
                    else DEFAULTS.get(name, getattr(plain, name)))
        if name == "binarizer":
            expected = {"name": expected}
        assert getattr(teacher.config, name) == expected, name


def test_a_resolved_cell_cannot_be_changed():
    cell = resolve(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.id = "another"
    assert isinstance(cell.stages, tuple) and isinstance(cell.teachers, tuple)
