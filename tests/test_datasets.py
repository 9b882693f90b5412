"""Every registered dataset (walked from the registry) builds, is well formed and is seed-deterministic.

File-based sets are built from tiny files in their real formats; the others are generated offline.
"""

import numpy as np
import pytest
import torch

from genlab.data import build_dataset, files, get_dataset_fn, list_datasets
from test_data_vision import data_root, pin, tiny_images, write_cifar_tar, write_idx  # noqa: F401 (fixture)

OPTIONS = {  # small sizes so the whole registry builds in seconds
    "separable": {"n_train": 50, "n_test": 20},
    "gaussian_regression": {"n_train": 30, "n_test": 10, "p": 40},
    "digits": {}, "mnist1d": {"num_samples": 400}, "cifar10": {}, "mnist": {}, "fashion_mnist": {},
    "train_flipped": {"base": "digits", "base_options": {"n_train": 50}},  # 003 (data/flipped.py)
}


def write_files(name: str, root, monkeypatch) -> None:
    if name == "cifar10":
        xtr, ytr = tiny_images(40, (3, 32, 32), 0)
        xte, yte = tiny_images(20, (3, 32, 32), 1)
        write_cifar_tar(root / "cifar10" / "cifar-10-python.tar.gz", xtr, ytr, xte, yte)
    else:  # IDX sets: images (n, 28, 28), labels (n,)
        for split, n in (("train", 40), ("t10k", 20)):
            x, y = tiny_images(n, (28, 28), 2)
            write_idx(root / name / f"{split}-images-idx3-ubyte.gz", x)
            write_idx(root / name / f"{split}-labels-idx1-ubyte.gz", y.astype(np.uint8))
    pin(monkeypatch, name, root)


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_is_well_formed_and_seeded(name, data_root, monkeypatch):  # noqa: F811
    assert name in OPTIONS, f"add small options for new dataset {name!r} to this test"
    if name in files.SOURCES:
        write_files(name, data_root, monkeypatch)
    a, b = build_dataset(name, **OPTIONS[name]), build_dataset(name, **OPTIONS[name])
    assert a.n_train > 0 and len(a.x_test) > 0 and a.x_train.shape[1:] == a.x_test.shape[1:]
    x = a.inputs(a.x_train[:5])
    assert x.dtype == torch.float32 and torch.isfinite(x).all()
    if a.num_classes is None:
        assert a.y_train.dtype.is_floating_point
    else:
        assert a.y_train.dtype == torch.int64 and 0 <= int(a.y_train.min()) and int(a.y_train.max()) < a.num_classes
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)  # same seed, same data


# sets whose check is not per class: the synthetic sets' size/memory check and train_flipped's (its base's own,
# on base_options) are tested in tests/test_inputs_24.py
OTHER_CHECKS = ("separable", "gaussian_regression", "train_flipped")
CHECKED = [n for n in list_datasets() if hasattr(get_dataset_fn(n), "check") and n not in OTHER_CHECKS]


def test_the_image_sets_have_a_feasibility_check():
    assert {"cifar10", "mnist", "fashion_mnist", "digits", "mnist1d"} <= set(CHECKED)


@pytest.mark.parametrize("name", CHECKED)
def test_n_train_feasibility_check_refuses_exactly_past_the_rarest_class(name):
    """Every registered check: n_train up to K × (rarest class count) passes, one more is refused with the bound;
    with val_size, what fails for every validation draw is refused, what depends on the draw is left to the build."""
    check = get_dataset_fn(name).check
    msg = check(n_train=10 ** 9)
    assert msg and msg.startswith("n_train = 1000000000 needs")
    most = int(msg.rsplit("n_train <= ", 1)[1])
    assert check(n_train=most) is None
    assert check(n_train=most + 1) is not None
    assert check(n_train=10 ** 9, small=True) is None  # `small` caps n_train: not judged
    assert check(n_train=most + 1, val_size=10).startswith(f"n_train = {most + 1} needs")  # holding out only lowers
    n = most - 10
    assert check(n_train=n, val_size=1) is None  # feasible for some draws: the build decides
    too_many = check(n_train=n, val_size=10 ** 9)
    total = int(too_many.split(" training samples")[0].rsplit(" ", 1)[1])  # "... more than NAME's TOTAL training"
    assert check(n_train=n, val_size=total - n) is None  # exactly the whole split: possible for some draws
    assert check(n_train=n, val_size=total - n + 1) == too_many.replace(str(10 ** 9), str(total - n + 1))
