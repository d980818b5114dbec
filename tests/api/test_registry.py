"""The registries: registration rules, lookup errors, configuration checks, resolve; the same
rules for every kind (binarizers, architectures, datasets, distillation losses), their entry
points and plugin files."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
import torch

from bnnbench import (Binarizer, BnnbenchError, get, list_binarizers, make, register,
                      register_arch, register_dataset, register_distill_loss, resolve)
from bnnbench.api import registry
from bnnbench.api.distill import LOSSES
from bnnbench.data import Shape, dataset_shape, list_datasets, loader
from bnnbench.data.datasets import DATASETS
from bnnbench.models import arch_builder, list_archs
from bnnbench.models.archs import ARCHS
from registries import isolate

BUILTINS = ["biper", "bireal", "irnet", "reactnet", "recu", "sign_ste", "xnor"]


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    isolate(monkeypatch)


def test_builtins_listed_sorted():
    names = list_binarizers()
    assert set(BUILTINS) <= set(names) and names == sorted(names)
    assert all(get(n).origin == "built-in" for n in BUILTINS)


def test_unknown_name_lists_known_ones():
    with pytest.raises(BnnbenchError) as info:
        get("xnorr")
    msg = str(info.value)
    assert "unknown binarizer 'xnorr'" in msg and "--plugin" in msg
    assert all(n in msg for n in BUILTINS)
    with pytest.raises(BnnbenchError, match="unknown binarizer"):
        make({"name": "nope"})


def test_duplicate_registration_is_an_error(clean_registry):
    with pytest.raises(BnnbenchError, match="'xnor' is already registered"):
        @register("xnor")
        class MyXnor(Binarizer):
            pass

    @register("dup_test")
    class First(Binarizer):
        weight = activation = staticmethod(torch.sign)

    register("dup_test")(First)                                  # the same class again: fine
    with pytest.raises(BnnbenchError, match="already registered"):
        @register("dup_test")
        class Second(Binarizer):
            weight = activation = staticmethod(torch.sign)
    assert get("dup_test") is First and get("xnor").__name__ == "XNOR"


def test_register_rejects_non_binarizers_and_bad_names(clean_registry):
    with pytest.raises(BnnbenchError, match="does not subclass"):
        @register("not_a_binarizer")
        class NotOne:
            pass
    with pytest.raises(BnnbenchError, match="does not subclass"):
        register("a_function")(lambda x: x)
    for bad in ("Bad", "has-dash", "9lives", ""):
        with pytest.raises(BnnbenchError, match="lower_snake"):
            register(bad)
    with pytest.raises(BnnbenchError, match=r"@register\('name'\)"):
        @register
        class Forgot(Binarizer):
            pass
    assert "not_a_binarizer" not in list_binarizers()
    with pytest.raises(BnnbenchError, match=r"Half does not define activation\(\); a binarizer "
                                            r"must define weight\(w\) and activation\(x\)"):
        @register("half")
        class Half(Binarizer):
            weight = staticmethod(torch.sign)


def test_unknown_config_key_names_the_key_and_the_known_ones():
    with pytest.raises(BnnbenchError) as info:
        make({"name": "biper", "omega": 20.0})
    assert "'omega'" in str(info.value) and "omega0" in str(info.value)
    assert "reg_tau" in str(info.value)
    with pytest.raises(BnnbenchError, match="parameters: none"):
        make({"name": "xnor", "alpha": 1.0})


def test_config_types_are_checked_and_ints_become_floats():
    b = make({"name": "biper", "omega0": 30})
    assert b.omega0 == 30.0 and isinstance(b.omega0, float)
    for bad in ("20", True, None, [20.0]):
        with pytest.raises(BnnbenchError, match="'omega0' must be float"):
            make({"name": "biper", "omega0": bad})
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(BnnbenchError, match="'omega0' must be a finite number"):
            make({"name": "biper", "omega0": bad})


def test_config_is_annotated_attributes_only(clean_registry):
    @register("config_test")
    class C(Binarizer):
        """A test binarizer."""
        weight = activation = staticmethod(torch.sign)
        paper = "metadata, not configuration"
        width: int = 3
        scales: tuple = (1.0, 2.0)
        label: str = "x"

    assert C.defaults() == {"width": 3, "scales": (1.0, 2.0), "label": "x"}
    b = make({"name": "config_test", "scales": [3.0, 4.0]})     # a tuple read back from JSON
    assert b.scales == (3.0, 4.0)
    again = make(json.loads(json.dumps({"name": "config_test", **b.config()})))
    assert again.config() == b.config()
    with pytest.raises(BnnbenchError, match="'width' must be int"):
        make({"name": "config_test", "width": 2.5})
    with pytest.raises(BnnbenchError, match="'paper'"):
        make({"name": "config_test", "paper": "x"})


def test_resolve_accepts_name_dict_class_and_instance():
    cls = get("irnet")
    default = {"t_min": 0.1, "t_max": 10.0}
    assert resolve("irnet") == (cls, default)
    assert resolve({"name": "irnet"}) == (cls, default)
    assert resolve(cls) == (cls, default)
    assert resolve({"name": "irnet", "t_min": 1e-3}) == (cls, {"t_min": 1e-3, "t_max": 10.0})
    inst = make({"name": "irnet", "t_min": 1e-3})
    assert resolve(inst) == (cls, {"t_min": 1e-3, "t_max": 10.0})
    copy = make(inst)
    assert copy is not inst and type(copy) is cls and copy.t_min == 1e-3
    spec = {"name": "irnet", "t_min": 1e-3}
    resolve(spec)
    assert spec == {"name": "irnet", "t_min": 1e-3}              # the caller's dict is untouched


def test_resolve_rejects_other_things():
    with pytest.raises(BnnbenchError, match="needs a 'name'"):
        resolve({"omega0": 20.0})
    for bad in (3, None, object(), dict):
        with pytest.raises(BnnbenchError, match="cannot make a binarizer"):
            resolve(bad)


def test_recipe_picks_the_most_specific_entry():
    irnet = get("irnet")
    assert irnet.recipe("cifar10", "vgg_small")["binary"]["lr"] == 0.007
    assert irnet.recipe("cifar10", "resnet20")["binary"]["lr"] == 0.1
    assert irnet.recipe("imagenet", "resnet18") == {"binary": {}}
    biper = get("biper").recipe("cifar10", "resnet18")
    assert list(biper) == ["sine", "binary"] and biper["sine"]["epochs"] == 600
    biper["sine"]["epochs"] = 1                                   # a copy, not the class's data
    assert get("biper").recipes["cifar10"]["sine"]["epochs"] == 600


def test_plugin_file_registers_with_its_origin(tmp_path, clean_registry):
    f = tmp_path / "my_plugin.py"
    f.write_text("from bnnbench import Binarizer, register, sign_clipped_ste\n"
                 "@register('reg_file_test')\n"
                 "class T(Binarizer):\n"
                 "    weight = activation = staticmethod(sign_clipped_ste)\n")
    registry.load_plugins([f])
    registry.load_plugins([f])                                   # loading twice is harmless
    assert get("reg_file_test").origin == f"file {f.resolve()}"


@pytest.mark.parametrize("body, match", [
    ("1 / 0\n", "failed to import: ZeroDivisionError"),
    ("def broken(:\n", "failed to import: SyntaxError"),
    ("from bnnbench import register\n@register('x_bad')\nclass X: pass\n", "does not subclass"),
])
def test_plugin_file_errors(tmp_path, clean_registry, body, match):
    f = tmp_path / "bad_plugin.py"
    f.write_text(body)
    with pytest.raises(BnnbenchError, match=match):
        registry.load_plugin_file(f)
    assert not any(name.startswith("bnnbench_plugin_bad_plugin") for name in sys.modules)


def test_missing_or_non_python_plugin_file(tmp_path):
    with pytest.raises(BnnbenchError, match="not found"):
        registry.load_plugin_file(tmp_path / "nope.py")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(BnnbenchError, match="not a Python file"):
        registry.load_plugin_file(txt)


class _FakeEntryPoint(SimpleNamespace):
    def load(self):
        return self.loader()


def _fake_entry_points(monkeypatch, groups: dict[str, list]):
    """Discovery anew, finding `groups[group]` as the installed entry points of each group."""
    isolate(monkeypatch)
    monkeypatch.setattr(registry, "_discovered", set())
    monkeypatch.setattr(registry, "entry_points", lambda group: groups.get(group, []))


def test_entry_point_class_is_registered_under_its_name(monkeypatch):
    class Undecorated(Binarizer):
        weight = activation = staticmethod(torch.sign)

    def boom():
        raise ImportError("no module named 'missing_dep'")

    dist = SimpleNamespace(name="fake-dist")
    _fake_entry_points(monkeypatch, {"bnnbench.binarizers": [
        _FakeEntryPoint(name="broken_ep", value="broken.mod", dist=dist, loader=boom),
        _FakeEntryPoint(name="ep_class", value="pkg.mod:Undecorated", dist=dist,
                        loader=lambda: Undecorated)]})
    with pytest.raises(BnnbenchError) as info:
        registry.discover()
    # the broken package is reported, and did not stop the other one from registering
    assert "'broken_ep = broken.mod' failed to load: ImportError" in str(info.value)
    assert get("ep_class") is Undecorated
    assert Undecorated.origin == "entry point pkg.mod:Undecorated (fake-dist)"


def _builder(binarizer, *, in_channels=3, num_classes=10):
    return torch.nn.Linear(in_channels, num_classes)


def _loader(**_):
    return None


def test_every_kind_refuses_a_duplicate_and_names_who_registered_it(clean_registry):
    with pytest.raises(BnnbenchError, match=r"^cifar architecture 'resnet20' is already "
                                            r"registered \(by built-in\); choose another name$"):
        register_arch("resnet20", family="cifar")(_builder)
    register_arch("resnet20", family="imagenet")(_builder)     # a name is unique per family
    assert arch_builder("imagenet", "resnet20") is _builder
    assert arch_builder("cifar", "resnet20") is not _builder
    digits = dict(family="cifar", in_channels=1, num_classes=10, image_size=8)
    with pytest.raises(BnnbenchError, match=r"^dataset 'digits' is already registered "
                                            r"\(by built-in\)"):
        register_dataset("digits", **digits)(_loader)
    register_dataset("dup_data", **digits)(_loader)
    register_dataset("dup_data", **digits)(_loader)             # the same entry again: fine
    with pytest.raises(BnnbenchError, match="'dup_data' is already registered"):
        register_dataset("dup_data", **{**digits, "num_classes": 2})(_loader)
    assert dataset_shape("dup_data") == Shape("cifar", 1, 10, 8)


def test_bad_names_families_and_shapes_are_refused_in_one_line(clean_registry):
    with pytest.raises(BnnbenchError, match="^cifar architecture name 'TinyNet' must be "
                                            "lower_snake_case$"):
        register_arch("TinyNet", family="cifar")(_builder)
    with pytest.raises(BnnbenchError, match="^unknown model family 'mnist'; known: cifar, "
                                            "imagenet$"):
        register_arch("tiny", family="mnist")
    with pytest.raises(BnnbenchError, match="is not a function"):
        register_arch("not_callable", family="cifar")(3)
    for field, bad in (("in_channels", 0), ("num_classes", 2.0), ("image_size", True)):
        shape = {"family": "cifar", "in_channels": 3, "num_classes": 10, "image_size": 32,
                 field: bad}
        with pytest.raises(BnnbenchError, match=f"^@register_dataset\\('bad'\\): {field} must "
                                                "be a positive integer"):
            register_dataset("bad", **shape)
    with pytest.raises(BnnbenchError, match="^dataset name 'Bad-Set' must be lower_snake_case"):
        register_dataset("Bad-Set", family="cifar", in_channels=3, num_classes=10,
                         image_size=32)(_loader)
    assert "bad" not in list_datasets() and "not_callable" not in list_archs("cifar")


@pytest.mark.parametrize("kind, lookup, typo, closest, known", [
    ("binarizer", get, "xnorr", "xnor", list_binarizers),
    ("cifar architecture", lambda n: arch_builder("cifar", n), "resnet2", "resnet20",
     lambda: list_archs("cifar")),
    ("dataset", loader, "cifar1", "cifar10", list_datasets),
    ("distillation loss", LOSSES.get, "distrib", "distribution", LOSSES.names),
])
def test_an_unknown_name_lists_the_known_ones_and_suggests_the_closest(kind, lookup, typo,
                                                                      closest, known):
    with pytest.raises(BnnbenchError) as info:
        lookup(typo)
    assert str(info.value) == (f"unknown {kind} '{typo}'; known: {', '.join(known())}; did you "
                               f"mean '{closest}'? (a plugin file needs --plugin FILE)")
    with pytest.raises(BnnbenchError) as info:
        lookup("qqqqqqq")                                      # nothing close: no guess
    assert "did you mean" not in str(info.value) and "--plugin FILE" in str(info.value)


def test_entry_points_of_every_kind_register_with_their_origin(monkeypatch):
    """An entry point names a module whose decorators register (here: loading registers)."""
    dist = SimpleNamespace(name="fake-dist")
    loads = []

    def loading(register_it):
        def load():
            loads.append(register_it)
            return register_it()
        return load

    def broken():
        raise ImportError("no module named 'missing_dep'")

    _fake_entry_points(monkeypatch, {
        "bnnbench.archs": [_FakeEntryPoint(
            name="ep_arch", value="pkg.archs", dist=dist,
            loader=loading(lambda: register_arch("ep_arch", family="cifar")(_builder)))],
        "bnnbench.datasets": [
            _FakeEntryPoint(name="broken_data", value="broken.data", dist=dist, loader=broken),
            _FakeEntryPoint(name="ep_data", value="pkg.data:load", dist=dist, loader=loading(
                lambda: register_dataset("ep_data", family="cifar", in_channels=1,
                                         num_classes=4, image_size=16)(_loader)))],
        "bnnbench.distill_losses": [_FakeEntryPoint(
            name="ep_loss", value="pkg.losses", dist=dist,
            loader=loading(lambda: register_distill_loss("ep_loss")(torch.sub)))],
    })
    assert "ep_arch" in list_archs("cifar") and "ep_arch" not in list_archs("imagenet")
    assert arch_builder("cifar", "ep_arch") is _builder
    with pytest.raises(BnnbenchError) as info:
        list_datasets()
    # the broken package is reported in one line, and did not stop the other one
    assert str(info.value) == ("plugin entry point 'broken_data = broken.data' failed to load: "
                               "ImportError: no module named 'missing_dep' (fix or uninstall "
                               "that package)")
    assert loader("ep_data") is _loader and dataset_shape("ep_data") == Shape("cifar", 1, 4, 16)
    assert LOSSES.get("ep_loss") is torch.sub
    assert ARCHS["cifar"].origin("ep_arch") == "entry point pkg.archs (fake-dist)"
    assert DATASETS.origin("ep_data") == "entry point pkg.data:load (fake-dist)"
    assert LOSSES.origin("ep_loss") == "entry point pkg.losses (fake-dist)"
    for lookup in (list_archs, list_datasets, LOSSES.names):  # each group is loaded once
        lookup()
    assert len(loads) == 3


def test_a_plugin_file_may_register_every_kind(tmp_path, clean_registry):
    f = tmp_path / "every_kind.py"
    f.write_text("from bnnbench import (Binarizer, register, register_arch, register_dataset,\n"
                 "                      register_distill_loss, sign_clipped_ste)\n"
                 "@register('file_bin')\n"
                 "class B(Binarizer):\n"
                 "    weight = activation = staticmethod(sign_clipped_ste)\n"
                 "@register_arch('file_arch', family='imagenet')\n"
                 "def file_arch(binarizer, *, in_channels=3, num_classes=1000): ...\n"
                 "@register_dataset('file_data', family='imagenet', in_channels=3,\n"
                 "                  num_classes=5, image_size=64)\n"
                 "def load(**_): ...\n"
                 "@register_distill_loss('file_loss')\n"
                 "def loss(student, teacher, labels): ...\n")
    registry.load_plugins([f])
    origin = f"file {f.resolve()}"
    assert get("file_bin").origin == registry.BINARIZERS.origin("file_bin") == origin
    assert ARCHS["imagenet"].origin("file_arch") == origin
    assert DATASETS.origin("file_data") == LOSSES.origin("file_loss") == origin
    assert dataset_shape("file_data") == Shape("imagenet", 3, 5, 64)
    assert registry.BINARIZERS.origin("xnor") == ARCHS["cifar"].origin("vgg_small") == "built-in"
