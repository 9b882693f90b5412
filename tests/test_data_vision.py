"""Image sets: file readers and checksums, shared options (splits, corruption, flips, augmentation)."""

from __future__ import annotations

import gzip
import math
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import build_dataset, files, labels, transforms
from genlab.data.vision import VisionOptions

SPEC = Path(__file__).resolve().parents[1] / "experiments" / "000" / "ch4_convnet3.toml"


# ---- tiny files in the real formats -------------------------------------------------------------------

def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0x0000 0x08 ndim, big-endian sizes, data."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def write_idx(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_cifar_tar(path: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                    y_test: np.ndarray, n_batches: int = 2) -> Path:
    return files.write_cifar10_tar(path, x_train, y_train, x_test, y_test, n_batches=n_batches)


def tiny_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), np.arange(n) % 10


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))

    def no_network(url, dest):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(files, "download", no_network)
    return tmp_path


def pin(monkeypatch, dataset: str, root: Path) -> None:
    """Point SOURCES[dataset] at the hashes of the tiny files written under root (they are not canonical)."""
    pinned = tuple(s._replace(sha256=files.sha256_of(root / dataset / s.filename)) for s in files.SOURCES[dataset])
    monkeypatch.setitem(files.SOURCES, dataset, pinned)


@pytest.fixture
def tiny_cifar(data_root, monkeypatch):
    xtr, ytr = tiny_images(60, (3, 32, 32), 0)
    xte, yte = tiny_images(20, (3, 32, 32), 1)
    write_cifar_tar(data_root / "cifar10" / "cifar-10-python.tar.gz", xtr, ytr, xte, yte)
    pin(monkeypatch, "cifar10", data_root)
    return xtr, ytr, xte, yte


# ---- readers and checksums -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path, suffix):
    x, y = tiny_images(7, (28, 28), 0)
    assert np.array_equal(files.read_idx(write_idx(tmp_path / f"im{suffix}", x)), x)
    assert np.array_equal(files.read_idx(write_idx(tmp_path / f"lb{suffix}", y.astype(np.uint8))), y)


def test_idx_rejects_bad_files():
    with pytest.raises(ValueError, match="not an IDX"):
        files.parse_idx(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bytes follow"):
        files.parse_idx(idx_bytes(np.zeros((2, 3), np.uint8))[:-1])


def test_cifar_tar_round_trip(tmp_path):
    xtr, ytr = tiny_images(30, (3, 32, 32), 0)
    xte, yte = tiny_images(10, (3, 32, 32), 1)
    got = files.read_cifar10_tar(write_cifar_tar(tmp_path / "c.tar.gz", xtr, ytr, xte, yte, n_batches=3))
    for a, b in zip(got, (xtr, ytr, xte, yte)):
        assert np.array_equal(a, b)
    assert got[0].dtype == np.uint8 and got[1].dtype == np.int64


def test_wrong_checksum_is_refused_before_reading(data_root, monkeypatch):
    xtr, ytr = tiny_images(20, (3, 32, 32), 0)
    write_cifar_tar(data_root / "cifar10" / "cifar-10-python.tar.gz", xtr, ytr, xtr, ytr)  # canonical hash pinned
    monkeypatch.setattr(files, "read_cifar10_tar", lambda p: pytest.fail("a file with a bad hash was read"))
    with pytest.raises(files.ChecksumError, match="6d958be0"):
        build_dataset("cifar10")


def test_missing_file_offline_names_file_path_and_hash(data_root):
    src = files.SOURCES["mnist"][0]
    with pytest.raises(files.DataFileError) as e:
        build_dataset("mnist")
    msg = str(e.value)
    assert src.filename in msg and src.sha256 in msg and src.url in msg
    assert str(data_root / "mnist" / src.filename) in msg
    assert not list(data_root.rglob("*.part"))


def test_fetch_checks_downloads(data_root, monkeypatch):
    good, bad = b"the right bytes", b"other bytes"
    src = files.Source("f.bin", "https://example.invalid/f.bin", files.hashlib.sha256(good).hexdigest())
    monkeypatch.setitem(files.SOURCES, "toy", (src,))
    monkeypatch.setattr(files, "download", lambda url, dest: dest.write_bytes(bad))
    with pytest.raises(files.ChecksumError, match="nothing was kept"):
        files.fetch("toy")
    assert not list(data_root.rglob("f.bin*"))
    monkeypatch.setattr(files, "download", lambda url, dest: dest.write_bytes(good))
    assert files.fetch("toy") == [data_root / "toy" / "f.bin"]
    assert [st for _, _, st in files.status("toy", check=True)] == ["ok"]


def test_cli_ls_and_offline_fetch(data_root):
    from typer.testing import CliRunner

    from genlab.cli.datasets import app

    r = CliRunner().invoke(app, ["ls"])
    assert r.exit_code == 0 and "missing" in r.output and str(data_root) in r.output
    r = CliRunner().invoke(app, ["fetch", "fashion_mnist"])
    assert r.exit_code == 2 and "train-images-idx3-ubyte.gz" in r.output


# ---- the data sets from tiny files -------------------------------------------------------------------

def test_cifar10_from_tiny_files(tiny_cifar):
    xtr, ytr, xte, yte = tiny_cifar
    d = build_dataset("cifar10", test_flips=["vertical", "horizontal"])
    assert d.in_shape == (3, 32, 32) and d.x_train.dtype == torch.uint8 and d.num_classes == 10
    assert torch.equal(d.x_train, torch.from_numpy(xtr)) and torch.equal(d.y_test, torch.from_numpy(yte))
    assert torch.equal(d.extra_tests["test_vflip"][0], torch.from_numpy(xte).flip(-2))
    x = d.inputs(d.x_test[:4])  # (4, 3, 32, 32) normalized with 000's constants
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    assert torch.allclose(x, (torch.from_numpy(xte[:4]).float() / 255 - mean) / std, atol=1e-5)


def test_cifar10_val_split_and_subset(tiny_cifar):
    d = build_dataset("cifar10", val_size=10, n_train=20)
    assert d.n_train == 20 and len(d.extra_tests["val"][1]) == 10
    assert torch.bincount(d.y_train, minlength=10).tolist() == [2] * 10


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_idx_sets_from_tiny_files(data_root, monkeypatch, dataset):
    xtr, ytr = tiny_images(50, (28, 28), 0)
    xte, yte = tiny_images(20, (28, 28), 1)
    for name, a in zip([s.filename for s in files.SOURCES[dataset]], (xtr, ytr, xte, yte)):
        write_idx(data_root / dataset / name, a)
    pin(monkeypatch, dataset, data_root)
    d = build_dataset(dataset, augment="crop_flip")
    assert d.in_shape == (1, 28, 28) and torch.equal(d.x_train[:, 0], torch.from_numpy(xtr))
    xb = d.augment(d.inputs(d.x_train[:8]), torch.Generator().manual_seed(0))
    assert xb.shape == (8, 1, 28, 28) and xb.dtype == torch.float32


# ---- labels -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["uniform", "other"])
def test_corruption_rate_within_binomial_tolerance(mode):
    n, k, p = 20000, 10, 0.3
    y = torch.arange(n) % k
    y2, mask = labels.corrupt_labels(y, k, p, torch.Generator().manual_seed(0), mode)
    tol = 5 * math.sqrt(n * p * (1 - p))  # 5 binomial standard deviations
    assert abs(int(mask.sum()) - n * p) < tol
    assert torch.equal(y2[~mask], y[~mask])
    changed = p * (1 - 1 / k) if mode == "uniform" else p  # uniform redraws keep the label 1/k of the time
    assert abs(int((y2 != y).sum()) - n * changed) < tol
    if mode == "other":
        assert bool((y2[mask] != y[mask]).all())


def test_same_seed_same_mask_and_clean_test_labels():
    clean = build_dataset("digits", seed=3)
    a = build_dataset("digits", corrupt_prob=0.4, seed=3)
    b = build_dataset("digits", corrupt_prob=0.4, seed=3)
    c = build_dataset("digits", corrupt_prob=0.4, seed=4)
    assert torch.equal(a.info["corrupt_mask"], b.info["corrupt_mask"]) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.info["corrupt_mask"], c.info["corrupt_mask"])
    assert torch.equal(a.y_test, clean.y_test)  # test labels stay clean by default
    assert torch.equal(a.info["y_train_true"], clean.y_train)
    t = build_dataset("digits", corrupt_prob=1.0, corrupt_mode="other", corrupt_test=True, seed=3)
    assert bool((t.y_test != clean.y_test).all()) and torch.equal(t.info["y_test_true"], clean.y_test)


def test_balanced_subsets_are_nested():
    y = torch.arange(1000) % 10
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    small, big = labels.balanced_subset(y, 55, 10, g()), labels.balanced_subset(y, 200, 10, g())
    assert torch.bincount(y[small], minlength=10).tolist() == [6] * 5 + [5] * 5
    assert set(small.tolist()) <= set(big.tolist())
    with pytest.raises(ValueError, match="n_train"):
        labels.balanced_subset(y, 2000, 10, g())


def test_confusion_set():
    d = build_dataset("digits", n_train=500, confusion_size=300, seed=1)
    assert d.n_train == 800 and int(d.info["confusion_mask"].sum()) == 300
    assert bool(d.info["confusion_mask"][500:].all()) and not bool(d.info["corrupt_mask"][:500].any())
    assert 0.8 < d.info["label_noise"] * 800 / 300 < 1.0  # about 9/10 of random labels are wrong


def test_small_and_flat_and_signals():
    d = build_dataset("digits", small=True, flatten=True, augment="crop_flip", test_flips=["horizontal"])
    assert d.n_train == 1000 and d.in_shape == (64,) and d.extra_tests["test_hflip"][0].shape[1:] == (64,)
    assert d.augment(d.inputs(d.x_train[:5]), torch.Generator()).shape == (5, 64)
    m = build_dataset("mnist1d", num_samples=600, corrupt_prob=0.2, augment="crop", val_size=50)
    assert m.in_shape == (40,) and len(m.extra_tests["val"][0]) == 50
    assert m.augment(m.inputs(m.x_train[:5]), torch.Generator()).shape == (5, 40)


def test_bad_options_name_the_field():
    with pytest.raises(ValueError, match="corrupt_prob"):
        build_dataset("digits", corrupt_prob=1.5)
    with pytest.raises(ValueError, match="val_size"):
        build_dataset("digits", val_size=5000)
    assert VisionOptions() == VisionOptions()  # defaults are a no-op value object


# ---- transforms ---------------------------------------------------------------------------------------

def test_flips_are_involutions_and_crops_keep_shape():
    x = torch.randn(6, 3, 32, 32)
    assert torch.equal(transforms.hflip(transforms.hflip(x)), x)
    assert torch.equal(transforms.vflip(transforms.vflip(x)), x)
    assert torch.equal(transforms.vflip(x)[:, :, 0], x[:, :, -1])
    g = torch.Generator().manual_seed(0)
    assert transforms.random_crop(x, 4, g).shape == x.shape
    assert transforms.random_crop(torch.randn(6, 1, 40), 3, g).shape == (6, 1, 40)
    assert torch.equal(transforms.random_crop(x, 0, g), x)
    with pytest.raises(ValueError, match="vertical flip"):
        transforms.vflip(torch.randn(2, 1, 40))


def test_random_crop_is_a_zero_filled_shift_and_seeded():
    x = torch.arange(1, 26, dtype=torch.float32).view(1, 1, 5, 5).repeat(64, 1, 1, 1)
    a = transforms.random_crop(x, 2, torch.Generator().manual_seed(1))
    b = transforms.random_crop(x, 2, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    padded = torch.nn.functional.pad(x[0], (2, 2, 2, 2))  # (1, 9, 9)
    windows = {tuple(padded[:, i:i + 5, j:j + 5].flatten().tolist()) for i in range(5) for j in range(5)}
    assert all(tuple(s.flatten().tolist()) in windows for s in a)
    assert len({tuple(s.flatten().tolist()) for s in a}) > 5  # offsets differ across the batch


def test_random_hflip_flips_about_half():
    x = torch.randn(2000, 1, 2, 3)
    out = transforms.random_hflip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.equal(out[~flipped], x[~flipped]) and 900 < int(flipped.sum()) < 1100


def test_per_class_accuracy():
    d = build_dataset("digits", normalize=False)

    class Oracle(torch.nn.Module):  # right on classes 0..4, says 0 for the rest
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.where(self.y < 5, self.y, 0), 10).float()

    m = Oracle()
    m.y = d.y_test
    acc = labels.per_class_accuracy(m, d, d.x_test, d.y_test, batch_size=10_000)
    assert acc.shape == (10,) and acc[:5].eq(1).all() and acc[5:].eq(0).all()


# ---- end to end ----------------------------------------------------------------------------------------

def test_fig4_spec_loads_and_small_profile_reaches_zero_training_error(tmp_path):
    from genlab.executors import pending
    from genlab.executors.local import run_local
    from genlab.spec.loader import load
    from genlab.store import Store

    full = load(SPEC, None)
    assert full.runs[0].config.data.name == "cifar10" and full.runs[0].config.model.name == "convnet3"
    assert len(full.runs) == 2 * 28 and full.runs[0].config.schedule.factors == [1.0, 1.0, 0.1, 0.01]
    exp = load(SPEC)  # the small profile: digits
    store, errors = Store(tmp_path / "runs"), []
    job = next(j for j in pending(exp, store) if (j.run.point["model.width"], j.run.point["init.std"],
                                                  j.run.point["data.corrupt_prob"]) == (64, 0.1, 0.0))
    run_local([job], store, on_done=lambda job, res, err: errors.append(err))
    assert errors == [None]
    res = store.results(exp.name)
    assert res["stop_reason"].tolist() == ["zero_train_error"] and res["train_error"].tolist() == [0.0]


def test_fig4_full_spec_trains_on_cifar10_files(tiny_cifar, tmp_path):
    """The CIFAR-10 (not small) spec runs end to end when the files are present (tiny files here)."""
    from genlab.spec.loader import tomllib  # tomli on Python 3.10

    from genlab.executors import pending
    from genlab.executors.local import run_local
    from genlab.spec.loader import parse
    from genlab.store import Store

    raw = tomllib.loads(SPEC.read_text())
    raw["train"]["epochs"], raw["sweep"] = 2, {"init.std": [0.05], "model.width": [64]}
    raw["record"] = {}  # measures are tested elsewhere
    raw["data"]["test_flips"] = ["vertical"]
    exp = parse(raw, where=str(SPEC))
    store, errors = Store(tmp_path / "runs"), []
    run_local(pending(exp, store), store, on_done=lambda job, res, err: errors.append(err))
    assert errors == [None]
    hist = store.history(exp.name)
    assert hist["epoch"].tolist() == [0, 1, 2] and hist["test_vflip_error"].notna().all()
    assert store.results(exp.name)["n_params"].tolist() == [148_160]
