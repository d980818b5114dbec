"""bnnbench.data: real CIFAR-10 from the python batches, an ImageFolder tree, scikit-learn digits.

Properties checked: shapes, counts, labels against the pickles, normalisation statistics,
augmentation against an independent per-image reference, determinism given the generator,
every image exactly once per epoch, and the error messages for missing or malformed data.
"""
from __future__ import annotations

import pickle
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from bnnbench.data import NORMALIZE, list_datasets, load_dataset
from bnnbench.data.augment import crop_flip
from bnnbench.errors import BnnbenchError

CIFAR_MEAN = torch.tensor(NORMALIZE["cifar"][0]).view(3, 1, 1)
CIFAR_STD = torch.tensor(NORMALIZE["cifar"][1]).view(3, 1, 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def read_pickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


@pytest.fixture(autouse=True)
def no_user_data(monkeypatch, tmp_path):
    """Keep the user's environment and cache out of every test."""
    monkeypatch.delenv("BNNBENCH_DATA", raising=False)
    monkeypatch.delenv("BNNBENCH_IMAGENET", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="module")
def cifar(cifar10_root):
    return load_dataset("cifar10", data_dir=str(cifar10_root))


@pytest.fixture(scope="module")
def cifar_5k(cifar10_root):
    """The first 5,000 real training images: whole epochs stay fast on a busy CPU."""
    return load_dataset("cifar10", data_dir=str(cifar10_root), subset=5000)


def write_batches(folder: Path, train_sizes=(300,) * 5, test_size=200, encode=True) -> Path:
    """A synthetic cifar-10-batches-py/ whose image i is constant per channel and encodes i:
    R = i % 256, G = i // 256, so any crop or flip of it still shows which image it is."""
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True)
    start = 0
    for name, n in [(f"data_batch_{b + 1}", s) for b, s in enumerate(train_sizes)] + \
                   [("test_batch", test_size)]:
        idx = np.arange(start, start + n)
        data = np.zeros((n, 3, 1024), np.uint8)
        data[:, 0] = (idx % 256)[:, None]
        data[:, 1] = (idx // 256)[:, None]
        data[:, 2] = 77
        with open(root / name, "wb") as fh:
            pickle.dump({"data": data.reshape(n, 3072), "labels": list(idx % 10)}, fh)
        start += n
    return root


def reference_augment(img_u8: torch.Tensor, dy: int, dx: int, flip: bool, pad: int) -> torch.Tensor:
    """One image, the slow and obvious way: zero-pad, slice, mirror."""
    h, w = img_u8.shape[-2:]
    padded = torch.zeros(img_u8.shape[0], h + 2 * pad, w + 2 * pad, dtype=img_u8.dtype)
    padded[:, pad:pad + h, pad:pad + w] = img_u8
    out = padded[:, dy:dy + h, dx:dx + w]
    return out.flip(-1) if flip else out


# ---------------------------------------------------------------- registry of datasets

def test_list_and_unknown_name():
    assert list_datasets() == ["cifar10", "digits", "imagenet"]
    with pytest.raises(BnnbenchError, match=r"unknown dataset 'mnist'.*cifar10, digits, imagenet"):
        load_dataset("mnist")


def test_bad_arguments(cifar10_root):
    with pytest.raises(BnnbenchError, match="unknown normalize 'imagenette'.*cifar, imagenet"):
        load_dataset("cifar10", data_dir=str(cifar10_root), normalize="imagenette")
    with pytest.raises(BnnbenchError, match="subset must be a positive"):
        load_dataset("cifar10", data_dir=str(cifar10_root), subset=0)
    ds = load_dataset("digits")
    with pytest.raises(BnnbenchError, match="batch_size must be a positive"):
        ds.train_batches(0, gen(0))


# ---------------------------------------------------------------- CIFAR-10, the real one

def test_cifar10_attributes_and_contents_match_pickles(cifar, cifar10_root):
    assert (cifar.name, cifar.family, cifar.in_channels, cifar.num_classes) == \
        ("cifar10", "cifar", 3, 10)
    assert (cifar.num_train, cifar.num_test) == (50_000, 10_000)
    assert cifar.train_x.dtype == torch.uint8 and cifar.train_x.shape == (50_000, 3, 32, 32)
    assert cifar.test_x.shape == (10_000, 3, 32, 32) and cifar.test_y.dtype == torch.int64
    folder = cifar10_root / "cifar-10-batches-py"
    batches = [read_pickle(folder / f"data_batch_{i}") for i in range(1, 6)]
    labels = np.concatenate([b["labels"] for b in batches])
    assert np.array_equal(cifar.train_y.numpy(), labels)
    assert Counter(labels.tolist()) == {c: 5000 for c in range(10)}
    test = read_pickle(folder / "test_batch")
    assert np.array_equal(cifar.test_y.numpy(), test["labels"])
    # R, G, B planes of 32x32 row-major: pixel (row 5, col 7) of image 123 of batch 3.
    row = batches[2]["data"][123]
    img = cifar.train_x[20_000 + 123]
    assert [img[c, 5, 7].item() for c in range(3)] == [row[c * 1024 + 5 * 32 + 7] for c in range(3)]
    assert np.array_equal(cifar.test_x.reshape(10_000, -1).numpy(), test["data"])


def test_cifar10_test_batches_are_the_normalised_test_set_in_order(cifar):
    xs, ys = zip(*cifar.test_batches(1000))
    assert [len(y) for y in ys] == [1000] * 10
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.dtype == torch.float32 and torch.equal(y, cifar.test_y)
    for i in (0, 9):  # the first and the last batch, against the formula
        expected = (cifar.test_x[i * 1000:(i + 1) * 1000].float() / 255 - CIFAR_MEAN) / CIFAR_STD
        torch.testing.assert_close(xs[i], expected, rtol=0, atol=1e-5)
    # The published constants are the training set's: normalised data is ~N(0, 1) per channel.
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert torch.all(mean.abs() < 0.03), mean
    assert torch.all((std - 1).abs() < 0.03), std


def test_cifar10_unaugmented_training_statistics(cifar):
    # exact per-channel moments from the histogram of the 256 pixel values
    v = torch.arange(256, dtype=torch.float64) / 255
    hist = torch.stack([torch.bincount(cifar.train_x[:, c].flatten(), minlength=256)
                        for c in range(3)]).double()
    p = hist / hist.sum(dim=1, keepdim=True)
    mean = (p * v).sum(dim=1)
    std = ((p * v * v).sum(dim=1) - mean ** 2).sqrt()
    mean, std = mean.float(), std.float()
    torch.testing.assert_close(mean, CIFAR_MEAN.flatten(), atol=0.01, rtol=0)
    torch.testing.assert_close(std, CIFAR_STD.flatten(), atol=0.01, rtol=0)


def test_imagenet_normalisation_constants(cifar10_root):
    ds = load_dataset("cifar10", data_dir=str(cifar10_root), normalize="imagenet", subset=10)
    x, _ = next(ds.test_batches(4))
    m, s = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZE["imagenet"])
    torch.testing.assert_close(x, (ds.test_x[:4].float() / 255 - m) / s, rtol=0, atol=1e-5)
    assert ds.normalize == "imagenet" and ds.mean == pytest.approx((0.485, 0.456, 0.406))


def test_crop_flip_matches_per_image_reference():
    g = gen(3)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    dy = torch.randint(0, 9, (64,), generator=g)
    dx = torch.randint(0, 9, (64,), generator=g)
    fl = torch.randint(0, 2, (64,), generator=g).bool()
    # the corners of the offset square, with and without flip
    dy[:4], dx[:4] = torch.tensor([0, 8, 0, 8]), torch.tensor([0, 8, 8, 0])
    fl[:4] = torch.tensor([False, True, True, False])
    out = crop_flip(x, dy, dx, fl, pad=4)
    ref = torch.stack([reference_augment(x[i], int(dy[i]), int(dx[i]), bool(fl[i]), 4)
                       for i in range(64)])
    assert out.dtype == torch.uint8 and torch.equal(out, ref)
    # offsets (4, 4) without flip are the identity; with flip, a mirror
    four = torch.full((2,), 4)
    assert torch.equal(crop_flip(x[:2], four, four, torch.tensor([False, True]), 4),
                       torch.stack([x[0], x[1].flip(-1)]))


def test_cifar10_epoch_plan(cifar):
    perm, dy, dx, fl = cifar.epoch_plan(gen(7))
    assert sorted(perm.tolist()) == list(range(50_000))
    # crop offsets uniform on 0..8 and flips a fair coin, as RandomCrop(32, 4) + flip draw them
    for off in (dy, dx):
        counts = torch.bincount(off, minlength=9)
        assert len(counts) == 9 and torch.all((counts / 50_000 - 1 / 9).abs() < 0.01), counts
    assert abs(fl.float().mean().item() - 0.5) < 0.01
    assert torch.equal(cifar.epoch_plan(gen(7))[0], perm)


def test_cifar10_train_batches_are_reference_augmentations(cifar_5k):
    ds = cifar_5k
    perm, dy, dx, fl = ds.epoch_plan(gen(7))
    for b, (x, y) in enumerate(ds.train_batches(256, gen(7))):
        if b not in (0, 19):  # the first batch and the last, smaller one (5,000 = 19 * 256 + 136)
            continue
        rows = range(b * 256, min((b + 1) * 256, 5000))
        assert x.shape == (len(rows), 3, 32, 32) and x.dtype == torch.float32
        assert torch.equal(y, ds.train_y[perm[list(rows)]])
        ref = torch.stack([reference_augment(ds.train_x[perm[i]], int(dy[i]), int(dx[i]),
                                             bool(fl[i]), 4) for i in rows])
        expected = (ref.float() / 255 - CIFAR_MEAN) / CIFAR_STD
        torch.testing.assert_close(x, expected, rtol=0, atol=1e-5)
    assert b == 19


def test_cifar10_epochs_deterministic_given_generator(cifar_5k):
    ds = cifar_5k
    n = 0
    for (xa, ya), (xb, yb) in zip(ds.train_batches(500, gen(1)), ds.train_batches(500, gen(1))):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        n += len(ya)
    assert n == 5000
    xa, _ = next(ds.train_batches(500, gen(1)))
    xb, _ = next(ds.train_batches(500, gen(2)))
    assert not torch.equal(xa, xb)
    # One generator across epochs: the randomness is drawn when train_batches is called, so
    # the next epoch is the same whether or not the previous one was iterated to the end.
    g, h = gen(5), gen(5)
    ds.train_batches(500, g)
    next(ds.train_batches(500, h))
    xg, xh = next(ds.train_batches(500, g))[0], next(ds.train_batches(500, h))[0]
    assert torch.equal(xg, xh) and not torch.equal(xg, next(ds.train_batches(500, gen(5)))[0])


def test_every_image_once_per_epoch(tmp_path):
    write_batches(tmp_path)
    ds = load_dataset("cifar10", data_dir=str(tmp_path))
    assert (ds.num_train, ds.num_test) == (1500, 200)
    seen, labels = [], []
    for x, y in ds.train_batches(256, gen(0)):
        # the centre pixel survives any 4-pixel crop; decode the image index from it
        centre = x[:, :, 16, 16] * CIFAR_STD.flatten() + CIFAR_MEAN.flatten()
        px = torch.round(centre * 255).long()
        assert torch.all(px[:, 2] == 77)
        seen += (px[:, 0] + 256 * px[:, 1]).tolist()
        labels += y.tolist()
    assert sorted(seen) == list(range(1500))
    assert labels == [i % 10 for i in seen]
    assert seen != sorted(seen)  # shuffled


def test_subset_keeps_first_images_and_whole_test_set(cifar10_root):
    ds = load_dataset("cifar10", data_dir=str(cifar10_root / "cifar-10-batches-py"), subset=1000)
    first = read_pickle(cifar10_root / "cifar-10-batches-py" / "data_batch_1")
    assert (ds.num_train, ds.num_test) == (1000, 10_000)
    assert np.array_equal(ds.train_x.reshape(1000, -1).numpy(), first["data"][:1000])
    assert sum(len(y) for _, y in ds.train_batches(300, gen(0))) == 1000


def test_location_env_var_then_cache(tmp_path, monkeypatch):
    write_batches(tmp_path / "env", train_sizes=(10,) * 5, test_size=10)
    monkeypatch.setenv("BNNBENCH_DATA", str(tmp_path / "env"))
    assert load_dataset("cifar10").num_train == 50
    # a data_dir without the data falls through to the next place
    assert load_dataset("cifar10", data_dir=str(tmp_path / "nothing")).num_train == 50
    monkeypatch.delenv("BNNBENCH_DATA")
    write_batches(tmp_path / "xdg" / "bnnbench" / "data", train_sizes=(4,) * 5, test_size=4)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_dataset("cifar10").num_train == 20


def test_missing_cifar10_lists_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("BNNBENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(BnnbenchError) as err:
        load_dataset("cifar10", data_dir=str(tmp_path / "arg"))
    msg = str(err.value)
    for place in ("arg", "env", "xdg-cache/bnnbench/data"):
        assert str(tmp_path / place) in msg
    assert "download=True" in msg and "build_cifar10.py" in msg and "BNNBENCH_DATA" in msg


def test_download_failure_offline_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    where = re.escape(str(tmp_path / "arg"))
    with pytest.raises(BnnbenchError,
                       match=rf"downloading it to {where} failed.*unreachable.*build_cifar10.py"):
        load_dataset("cifar10", data_dir=str(tmp_path / "arg"), download=True)


@pytest.mark.parametrize("damage, message", [
    ("missing", r"data_batch_3 missing"),
    ("shape", r"'data' is uint8 \(300, 3000\), expected uint8 \(N, 3072\)"),
    ("labels", r"'labels' must be 300 integers in 0..9"),
    ("garbage", r"cannot read it as a pickled dict"),
])
def test_malformed_cifar10_folder(tmp_path, damage, message):
    root = write_batches(tmp_path)
    target = root / "data_batch_3"
    if damage == "missing":
        target.unlink()
    elif damage == "garbage":
        target.write_bytes(b"not a pickle")
    else:
        d = read_pickle(target)
        if damage == "shape":
            d["data"] = d["data"][:, :3000]
        else:
            d["labels"] = [10] * 300
        target.write_bytes(pickle.dumps(d))
    with pytest.raises(BnnbenchError, match=message):
        load_dataset("cifar10", data_dir=str(tmp_path))


# ---------------------------------------------------------------- ImageFolder (imagenet)

@pytest.fixture(scope="module")
def jpeg_tree(cifar10_jpeg_tree):
    return cifar10_jpeg_tree  # train/ and test/ of 10 classes x 8 images; `test` stands for `val`


def test_imagefolder_batches(jpeg_tree):
    ds = load_dataset("imagenet", data_dir=str(jpeg_tree), image_size=24, workers=0)
    assert (ds.name, ds.family, ds.in_channels, ds.num_classes) == ("imagenet", "imagenet", 3, 10)
    assert (ds.num_train, ds.num_test) == (80, 80) and ds.normalize == "imagenet"
    lo = (0 - torch.tensor(ds.mean)) / torch.tensor(ds.std)
    hi = (1 - torch.tensor(ds.mean)) / torch.tensor(ds.std)
    ys = []
    for x, y in ds.train_batches(32, gen(0)):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 24, 24) and y.dtype == torch.int64
        ch_min, ch_max = x.amin(dim=(0, 2, 3)), x.amax(dim=(0, 2, 3))
        assert torch.all(ch_min >= lo - 1e-5) and torch.all(ch_max <= hi + 1e-5)
        ys += y.tolist()
    assert len(ys) == 80 and Counter(ys) == {c: 8 for c in range(10)}
    # evaluation: in order, Resize(24 * 256 / 224 = 27) + CenterCrop(24) of each file
    from PIL import Image
    from torchvision import transforms as T
    x, y = next(ds.test_batches(16))
    assert y.tolist() == [0] * 8 + [1] * 8
    path = ds.test_set.samples[3][0]
    ref = T.Compose([T.Resize(27), T.CenterCrop(24), T.ToTensor(), T.Normalize(ds.mean, ds.std)])(
        Image.open(path).convert("RGB"))
    torch.testing.assert_close(x[3], ref)


def test_imagefolder_deterministic_given_generator_whatever_the_workers(jpeg_tree):
    def epoch(seed, workers):
        ds = load_dataset("imagenet", data_dir=str(jpeg_tree), image_size=16, workers=workers)
        return [b for b in ds.train_batches(40, gen(seed))]

    a, b, c, d = epoch(0, 0), epoch(0, 0), epoch(0, 2), epoch(1, 0)
    for (xa, ya), (xb, yb), (xc, yc) in zip(a, b, c):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xa, xc) and torch.equal(ya, yc)
    assert not torch.equal(a[0][0], d[0][0])


def test_imagefolder_subset_and_missing(jpeg_tree, tmp_path):
    ds = load_dataset("imagenet", data_dir=str(jpeg_tree), image_size=16, workers=0, subset=20)
    assert ds.num_train == 20 and sum(len(y) for _, y in ds.train_batches(8, gen(0))) == 20
    with pytest.raises(BnnbenchError) as err:
        load_dataset("imagenet", data_dir=str(tmp_path / "none"))
    msg = str(err.value)
    assert "ImageNet not found" in msg and str(tmp_path / "none") in msg
    assert "BNNBENCH_IMAGENET" in msg and str(tmp_path / "xdg-cache/bnnbench/data/imagenet") in msg
    broken = tmp_path / "broken"
    shutil.copytree(jpeg_tree / "train", broken / "train")
    shutil.copytree(jpeg_tree / "test", broken / "val")
    shutil.rmtree(broken / "val" / "cat")
    with pytest.raises(BnnbenchError, match="classes that differ"):
        load_dataset("imagenet", data_dir=str(broken))


# ---------------------------------------------------------------- digits

def test_digits_split_and_balance():
    ds = load_dataset("digits", normalize="cifar")  # RGB constants do not apply: own stats
    assert (ds.name, ds.family, ds.in_channels, ds.num_classes) == ("digits", "cifar", 1, 10)
    assert (ds.num_train, ds.num_test) == (1437, 360) and ds.normalize == "dataset"
    assert ds.train_x.dtype == torch.float32 and ds.train_x.shape == (1437, 1, 8, 8)
    assert ds.train_x.min() == 0 and ds.train_x.max() == 16
    test_counts = torch.bincount(ds.test_y, minlength=10)
    train_counts = torch.bincount(ds.train_y, minlength=10)
    assert torch.all((test_counts - 36).abs() <= 1), test_counts  # stratified: 20% of each class
    from sklearn.datasets import load_digits
    all_counts = torch.bincount(torch.tensor(load_digits().target))
    assert torch.equal(test_counts + train_counts, all_counts)
    # same split every time
    assert torch.equal(load_dataset("digits").test_x, ds.test_x)
    # normalised with the training split's own statistics
    x = torch.cat([b for b, _ in ds.test_batches(100)])
    torch.testing.assert_close(x, (ds.test_x - ds.mean[0]) / ds.std[0])
    assert ds.mean[0] == pytest.approx(ds.train_x.mean().item())
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1


def test_digits_augmentation_is_pad1_crop_without_flip():
    ds = load_dataset("digits")
    perm, dy, dx, fl = ds.epoch_plan(gen(4))
    assert set(dy.tolist()) == {0, 1, 2} and not fl.any()
    xs, ys = zip(*ds.train_batches(512, gen(4)))
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (1437, 1, 8, 8) and torch.equal(y, ds.train_y[perm])
    ref = torch.stack([reference_augment(ds.train_x[perm[i]], int(dy[i]), int(dx[i]), False, 1)
                       for i in range(1437)])
    torch.testing.assert_close(x, (ref - ds.mean[0]) / ds.std[0])
    x2 = torch.cat([b for b, _ in ds.train_batches(512, gen(4))])
    assert torch.equal(x, x2)
