"""The plugin registry: registration rules, lookup errors, configuration checks, resolve."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
import torch

from bnnbench import Binarizer, BnnbenchError, get, list_binarizers, make, register, resolve
from bnnbench.api import registry
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
