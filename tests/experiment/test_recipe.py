"""Recipes: precedence of the sources, the official warm-up + cosine schedule, weight-decay groups."""
import math

import pytest

from bnnbench.engine.optim import make_optimizer
from bnnbench.errors import BnnbenchError
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.recipe import lr_at, stage_recipes
from bnnbench.models import build_model


def _recipe(**kw):
    base = dict(lr=0.021, epochs=600, warmup_epochs=5, schedule="cosine", start_epoch=0)
    return {**base, **kw}


def test_biper_warmup_then_cosine_matches_official_loop():
    # Official loop: lr·(e+1)/5 for e < 5; CosineAnnealingLR(T_max = E − 4) stepped after each
    # epoch e ≥ 4, so epoch e ≥ 5 has seen (e − 4) cosine steps.
    r = _recipe()
    for e in range(5):
        assert lr_at(r, e) == pytest.approx(0.021 * (e + 1) / 5)
    for e in (5, 6, 300, 599):
        expected = 0.021 * (1 + math.cos(math.pi * (e - 4) / (600 - 4))) / 2
        assert lr_at(r, e) == pytest.approx(expected)


def test_cosine_without_warmup_is_plain_cosine_annealing():
    r = _recipe(warmup_epochs=0, lr=0.1, epochs=400)
    assert lr_at(r, 0) == pytest.approx(0.1)
    assert lr_at(r, 200) == pytest.approx(0.05)
    assert lr_at(r, 399) == pytest.approx(0.1 * (1 + math.cos(math.pi * 399 / 400)) / 2)


def test_linear_schedule_decays_to_zero():
    r = _recipe(warmup_epochs=0, schedule="linear", lr=2.5e-3, epochs=128)
    assert lr_at(r, 0) == pytest.approx(2.5e-3)
    assert lr_at(r, 64) == pytest.approx(1.25e-3)


def test_official_recipe_then_overrides_in_order():
    cfg = CellConfig(dataset="cifar10", arch="resnet18", binarizer={"name": "biper", "omega0": 10},
                     recipe={"lr": 0.05}, stage_recipes={"binary": {"batch_size": 128}}, budget=0.5)
    (s1, r1), (s2, r2) = stage_recipes(cfg)
    assert (s1, s2) == ("sine", "binary")
    assert r1["lr"] == r2["lr"] == 0.05                    # cell recipe beats the official one
    assert (r1["batch_size"], r2["batch_size"]) == (256, 128)
    assert (r1["epochs"], r2["epochs"]) == (300, 150)      # budget 0.5 of 600 and 299
    assert r1["weight_decay"] == 0.0016 and r2["weight_decay"] == 0.00016
    assert r1["binarizer"]["reg_tau"] == 0.037 and r2["binarizer"]["reg_tau"] == 0.0468
    assert r1["binarizer"]["omega0"] == r2["binarizer"]["omega0"] == 10.0
    assert r1["normalize"] == "imagenet"                   # BiPer normalises CIFAR as ImageNet


def test_cifar10_defaults_follow_the_official_loaders():
    # XNOR has no CIFAR-10 recipe of its own: it gets the common one, ImageNet mean/std
    # included, as the official IR-Net/ReCU/BiPer CIFAR-10 loaders normalise
    [(_, r)] = stage_recipes(CellConfig(dataset="cifar10", arch="resnet20", binarizer="xnor"))
    assert (r["optimizer"], r["lr"], r["epochs"], r["normalize"]) == ("sgd", 0.1, 400, "imagenet")


def test_short_stage_drops_a_warmup_that_does_not_fit():
    cfg = CellConfig(dataset="cifar10", arch="resnet20", binarizer="recu", epochs=1)
    [(_, r)] = stage_recipes(cfg)
    assert r["epochs"] == 1 and r["warmup_epochs"] == 0


def test_total_epochs_split_over_stages_in_the_official_ratio():
    def epochs(binarizer, total, **kw):
        cfg = CellConfig(dataset="cifar10", arch="resnet20", binarizer=binarizer,
                         total_epochs=total, **kw)
        return [r["epochs"] for _, r in stage_recipes(cfg)]

    official = [r["epochs"] for _, r in stage_recipes(
        CellConfig(dataset="cifar10", arch="resnet20", binarizer="biper"))]
    assert official == [600, 299]   # stage 2 trains epochs 1..299 of a 300-epoch schedule
    assert epochs("biper", 12) == [8, 4] and epochs("biper", 10) == [6, 4]   # 1 + 5.34 : 1 + 2.66
    assert epochs("reactnet", 11) == [6, 5] and epochs("recu", 11) == [11]
    assert epochs("biper", 2) == [1, 1]                       # at least one epoch a stage
    assert epochs("biper", 12, budget=0.5) == [4, 2]          # budget scales the split
    assert epochs("biper", 12, stage_recipes={"binary": {"epochs": 600}}) == [6, 6]
    with pytest.raises(BnnbenchError, match="total_epochs 1 is less than the 2 stages"):
        epochs("biper", 1)


@pytest.mark.parametrize("recipe, message", [
    ({"lr_max": 1.0}, "unknown recipe key 'lr_max'"),
    ({"lr": "fast"}, "'lr' must be float"),
    ({"optimizer": "lamb"}, "'optimizer' must be one of"),
])
def test_bad_recipe_names_the_key(recipe, message):
    with pytest.raises(BnnbenchError, match=message):
        stage_recipes(CellConfig(dataset="cifar10", arch="resnet20", binarizer="xnor",
                                 recipe=recipe))


def test_unknown_stage_is_an_error():
    with pytest.raises(BnnbenchError, match="stages"):
        stage_recipes(CellConfig(dataset="cifar10", arch="resnet20", binarizer="xnor",
                                 stage_recipes={"sine": {"lr": 0.1}}))


def test_weight_decay_groups():
    model = build_model("resnet20", "biper")
    names = {id(p): n for n, p in model.named_parameters()}

    def decayed(rule):
        opt = make_optimizer(model, dict(_recipe(), optimizer="sgd", momentum=0.9,
                                         weight_decay=1e-4, decay=rule))
        return {names[id(p)] for p in opt.param_groups[0]["params"]}

    everything = set(names.values())
    assert decayed("all") == everything
    conv_fc = decayed("conv_fc")
    assert any(n.endswith("binarizer.alpha") for n in conv_fc)   # BiPer's α is decayed
    assert not any("bn" in n or n.endswith("bias") for n in conv_fc)
    assert all(model.get_parameter(n).dim() == 4 for n in decayed("conv"))


def test_a_dataset_arch_entry_merges_over_the_dataset_entry():
    # IR-Net's VGG-Small entry states only what differs from its CIFAR-10 one
    [(_, vgg)] = stage_recipes(CellConfig(dataset="cifar10", arch="vgg_small", binarizer="irnet"))
    [(_, r20)] = stage_recipes(CellConfig(dataset="cifar10", arch="resnet20", binarizer="irnet"))
    assert (vgg["epochs"], vgg["lr"], vgg["binarizer"]["t_min"]) == (300, 0.007, 0.1)
    assert (r20["epochs"], r20["lr"], r20["binarizer"]["t_min"]) == (400, 0.1, 1e-3)
    for key in ("batch_size", "weight_decay", "warmup_epochs"):          # from "cifar10"
        assert vgg[key] == r20[key]
    assert vgg["batch_size"] == 128
