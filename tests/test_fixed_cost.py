"""A run's fixed cost (issue 28): fused batch losses, the disk cache of generated data sets, spec checks that
import no plotting libraries, and a solo epoch that checks its losses once."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from genlab.data import gencache
from genlab.losses import get_loss, list_losses


@pytest.mark.parametrize("name", list_losses())
def test_loss_mean_is_the_mean_of_per_sample(name):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(37, 1 if name == "exp" else 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2 if name == "exp" else 5, (37,), generator=g)
    loss = get_loss(name)
    assert loss(out, y).shape == ()
    assert float(loss(out, y)) == pytest.approx(float(loss.per_sample(out, y).mean()), rel=1e-14)
    assert float(loss(out.float(), y)) == pytest.approx(float(loss.per_sample(out.float(), y).mean()), rel=1e-6)


def test_cross_entropy_step_loss_is_one_fused_call():
    assert get_loss("cross_entropy").mean is not None  # the per-step loss skips per_sample(...).mean()


def _maker(calls):
    def make():
        calls.append(1)
        return {"x": np.arange(12, dtype=np.float64).reshape(3, 4) / 7, "y": np.array([1, 2, 3]), "junk": [1]}
    return make


def test_gencache_makes_once_then_loads_the_same_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv(gencache.OFF_VAR, raising=False)
    calls: list[int] = []
    a = gencache.cached_arrays("toy", {"n": 3}, _maker(calls), ("x", "y"), version="1")
    b = gencache.cached_arrays("toy", {"n": 3}, _maker(calls), ("x", "y"), version="1")
    assert calls == [1] and set(b) == {"x", "y"}
    assert np.array_equal(a["x"], b["x"]) and a["x"].dtype == b["x"].dtype == np.float64
    assert np.array_equal(b["y"], [1, 2, 3])
    # other arguments or another generator version: another file, made again
    gencache.cached_arrays("toy", {"n": 4}, _maker(calls), ("x", "y"), version="1")
    gencache.cached_arrays("toy", {"n": 3}, _maker(calls), ("x", "y"), version="2")
    assert calls == [1, 1, 1]
    assert len(list((tmp_path / "generated").glob("toy-*.npz"))) == 3
    assert not list((tmp_path / "generated").glob("*.part"))


def test_gencache_remakes_an_unreadable_file_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv(gencache.OFF_VAR, raising=False)
    calls: list[int] = []
    path = gencache.cache_path("toy", {"n": 3}, "1")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    got = gencache.cached_arrays("toy", {"n": 3}, _maker(calls), ("x", "y"), version="1")
    assert calls == [1] and np.array_equal(got["y"], [1, 2, 3])
    with np.load(path, allow_pickle=False) as f:  # replaced by a good file
        assert sorted(f.files) == ["x", "y"]
    monkeypatch.setenv(gencache.OFF_VAR, "off")
    gencache.cached_arrays("toy", {"n": 3}, _maker(calls), ("x", "y"), version="1")
    assert calls == [1, 1]


def test_gencache_refuses_object_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv(gencache.OFF_VAR, raising=False)
    with pytest.raises(TypeError, match="numeric"):
        gencache.cached_arrays("toy", {}, lambda: {"x": np.array([{"a": 1}], dtype=object)}, ("x",))


def test_mnist1d_from_the_cache_equals_a_fresh_generation(tmp_path, monkeypatch):
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    from genlab.data import offline

    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv(gencache.OFF_VAR, raising=False)
    offline._mnist1d_arrays.cache_clear()
    first = offline._mnist1d_arrays(300, 0.8, 5)  # made and stored
    offline._mnist1d_arrays.cache_clear()
    cached = offline._mnist1d_arrays(300, 0.8, 5)  # read back from disk
    offline._mnist1d_arrays.cache_clear()
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 300, 0.8, 5
    fresh = make_dataset(args)
    assert len(list((tmp_path / "generated").glob("mnist1d-*.npz"))) == 1
    for k in ("x", "y", "x_test", "y_test"):
        assert np.array_equal(cached[k], fresh[k]) and np.array_equal(first[k], fresh[k])
        assert cached[k].dtype == np.asarray(fresh[k]).dtype


def test_checking_a_spec_imports_no_plotting_or_table_library(tmp_path, write_spec):
    spec = write_spec()  # has a [[figures]] entry: its options are checked against the registered function
    code = ("import sys\nfrom genlab.spec.loader import load\nload(sys.argv[1], 'small')\n"
            "print('matplotlib' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_a_bad_figure_option_is_still_refused(write_spec):
    from genlab.spec.loader import load

    with pytest.raises(Exception, match="hue_lable|unknown option"):
        load(write_spec(__import__("conftest").TINY.replace('hue = "init.std"', 'hue_lable = "x"')), "small")
