"""Registry-wide checks of the measures: every registered measure runs on a toy net, is finite, deterministic,
fast, and leaves the model alone; plus the entry points (`compute`, `MeasureData`, `measure_experiment`)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import pytest
import torch
from torch import nn

from genlab.measures import MeasureData, applies_to, compute, flatten_values, get_measure, list_measures
from genlab.losses import get_loss

TOY_SECONDS = 5.0  # generous for a loaded CPU (it flaked at 2 s under load 8); each takes well under 0.3 s alone
NEEDS_INIT = {"dist_from_init"}


def toy_net() -> nn.Module:
    """conv → BN → ReLU → max-pool → linear, on 1×4×4 inputs, 3 classes (every kind of layer we fold or route)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(12, 3))
    with torch.no_grad():
        bn = net[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return net.double().eval()


def toy_data(net: nn.Module, n: int = 40) -> MeasureData:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 4, 4, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = net(x).argmax(1)  # labels the net fits: positive margins, so bounds are finite
    init = {k: v + 0.1 for k, v in net.state_dict().items()}
    return MeasureData(x, y, x[: n // 2], y[: n // 2], get_loss("cross_entropy"), init, 3)


@pytest.mark.parametrize("name", list_measures())
def test_every_measure_is_finite_deterministic_fast_and_pure(name):
    net = toy_net()
    data = toy_data(net)
    if not applies_to(get_measure(name), net, data):  # the least-squares measures: on the squared loss
        data = replace(data, loss=get_loss("mse"))
    before = copy.deepcopy(net.state_dict())
    t0 = time.perf_counter()
    first = compute([name], net, data)
    elapsed = time.perf_counter() - t0
    second = compute([name], net, data)
    assert first == second, "a measure must be deterministic (explicit generators only)"
    assert first and all(math.isfinite(v) for v in first.values()), first
    assert elapsed < TOY_SECONDS, f"{name} took {elapsed:.2f} s on a toy net"
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{name} modified the model ({k})"
    doc = get_measure(name).__doc__ or ""
    assert len(doc.strip()) > 20, f"{name} needs a docstring with its definition and source"


def test_compute_flattens_dicts_and_rejects_unknown_names():
    net = toy_net()
    data = toy_data(net)
    out = compute(["margin_q5", "normalized_loss"], net, data)
    assert set(out) == {"margin_q5", "normalized_loss.train", "normalized_loss.test"}
    assert flatten_values("m", {"a": 1}) == {"m.a": 1.0}
    with pytest.raises(KeyError, match="known measures"):
        compute(["no_such_measure"], net, data)


def test_compute_casts_to_float64_and_keeps_float32_model():
    net = toy_net().float()
    data = toy_data(toy_net())
    d32 = MeasureData(data.x_train.float(), data.y_train, data.x_test.float(), data.y_test, data.loss, None, 3)
    out = compute(["log_l2_path_norm"], net, d32, dtype=torch.float64)
    ref = compute(["log_l2_path_norm"], net.double(), data, dtype=torch.float64)
    assert out["log_l2_path_norm"] == pytest.approx(ref["log_l2_path_norm"], rel=1e-6)


def test_missing_init_state_says_how_to_fix():
    net = toy_net()
    data = toy_data(net)
    no_init = MeasureData(data.x_train, data.y_train, data.x_test, data.y_test, data.loss, None, 3)
    with pytest.raises(ValueError, match="init.pt"):
        compute(sorted(NEEDS_INIT), net, no_init)


def test_measure_data_from_dataset_preprocesses_and_cuts():
    from genlab.data import Dataset

    x = torch.arange(2 * 6 * 4, dtype=torch.uint8).reshape(12, 1, 2, 2)
    ds = Dataset("toy", x[:8], torch.zeros(8, dtype=torch.long), x[8:], torch.zeros(4, dtype=torch.long), 2,
                 preprocess=lambda b: b.float() / 255)
    md = MeasureData.from_dataset(ds, get_loss("cross_entropy"), max_samples=5)
    assert md.x_train.shape == (5, 1, 2, 2) and md.x_train.dtype == torch.float32
    assert torch.allclose(md.x_train, x[:5].float() / 255)
    assert len(md.x_test) == 4 and md.num_classes == 2


def test_registered_models_run_weight_measures():
    """The package's models (BN folding in conv4/vgg/resnet, option-A shortcuts) go through the weight measures."""
    from genlab.models import create_model, list_models

    names = ["log_l2_path_norm", "log_l1_path_norm", "log_prod_frobenius", "margin_q10", "num_params"]
    for model_name in ["mlp", "convnet3", "conv4", "resnet20", "vgg11_bn"]:
        if model_name not in list_models():
            continue
        torch.manual_seed(0)
        net = create_model(model_name, (3, 32, 32), 10).double().eval()
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(8, 3, 32, 32, generator=gen, dtype=torch.float64)
        data = MeasureData(x, torch.arange(8) % 10, x, torch.arange(8) % 10, get_loss("cross_entropy"), None, 10)
        out = compute(names, net, data)
        assert all(math.isfinite(v) for v in out.values()), (model_name, out)


def test_measure_experiment_in_worker_processes_matches_one_process(tmp_path):
    """workers = 2: every run measured once, in spawned workers, to the values one process gets (threads aside:
    rtol 1e-5), stored by the workers, progress counting each run, and a run that fails in a worker raising
    here with its name."""
    from genlab.executors.measure import measure_experiment
    from genlab.spec import RunConfig
    from genlab.store import Store
    from genlab.train.loop import summary, train

    store = Store(tmp_path)
    base = {"experiment": "e", "data": {"name": "separable", "n_train": 64, "n_test": 32},
            "model": {"name": "mlp", "widths": [8]}, "train": {"epochs": 1}}
    cfgs = [RunConfig.model_validate({**base, "seed": s}) for s in range(3)]
    for cfg in cfgs:
        writer = store.start(cfg.canonical_json(), "e", cfg.run_id, {})
        writer.finish(summary(train(cfg, save=writer.save_state), cfg, 0.0))
    names = ["margin_q5", "sharpness", "dist_from_init"]
    one = measure_experiment(store, "e", names)
    seen, skipped = [], []
    pooled = measure_experiment(store, "e", names, workers=2, threads=1, progress=lambda i, n, r: seen.append((i, n)),
                                on_skip=lambda r, why: skipped.append(r))
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)] and skipped == []
    assert set(pooled) == {c.run_id for c in cfgs}
    for rid, values in one.items():
        assert pooled[rid] == pytest.approx(values, rel=1e-5)
    assert store.results("e").set_index("run_id").loc[cfgs[0].run_id, "sharpness.zeta"] == \
        pytest.approx(pooled[cfgs[0].run_id]["sharpness.zeta"], rel=1e-12)  # stored by the worker
    bare = RunConfig.model_validate({**base, "seed": 9, "record": {"checkpoint": "none"}})
    writer = store.start(bare.canonical_json(), "e", bare.run_id, {})
    writer.finish(summary(train(bare, save=writer.save_state), bare, 0.0))
    with pytest.raises(FileNotFoundError, match=f"e/{bare.run_id}.*final.pt"):  # raised in a worker, seen here
        measure_experiment(store, "e", ["margin_q5"], workers=2, threads=1)
    with pytest.raises(ValueError, match="workers and threads must be at least 1"):
        measure_experiment(store, "e", ["margin_q5"], workers=0)


def test_measure_experiment_writes_results(tmp_path):
    from genlab.executors.measure import measure_experiment
    from genlab.spec import RunConfig
    from genlab.store import Store
    from genlab.train.loop import summary, train

    store = Store(tmp_path)
    cfg = RunConfig.model_validate({"experiment": "e", "data": {"name": "separable", "n_train": 64, "n_test": 32},
                                    "model": {"name": "mlp", "widths": [8]}, "train": {"epochs": 1}})
    writer = store.start(cfg.canonical_json(), "e", cfg.run_id, {})
    outcome = train(cfg, save=writer.save_state)
    writer.finish(summary(outcome, cfg, 0.0))
    seen = []
    out = measure_experiment(store, "e", ["margin_q5", "dist_from_init"], progress=lambda i, n, r: seen.append(r))
    assert seen == [cfg.run_id] and set(out[cfg.run_id]) == {"margin_q5", "dist_from_init"}
    table = store.results("e")
    assert table.loc[0, "dist_from_init"] == pytest.approx(out[cfg.run_id]["dist_from_init"])
    exact = measure_experiment(store, "e", ["margin_q5"], dtype="float64")[cfg.run_id]["margin_q5"]
    assert exact == pytest.approx(out[cfg.run_id]["margin_q5"], rel=1e-5)
    with pytest.raises(ValueError, match="float64"):
        measure_experiment(store, "e", ["margin_q5"], dtype="bfloat16")
    (store.run_dir("e", cfg.run_id) / "final.pt").unlink()  # damaged now: skipped, with its reason
    skipped = []
    assert measure_experiment(store, "e", ["margin_q5"], on_skip=lambda r, why: skipped.append((r, why))) == {}
    assert skipped == [(cfg.run_id, "damaged (final.pt: missing)")]
    bare = RunConfig.model_validate({**cfg.model_dump(), "record": {"checkpoint": "none"}})
    writer = store.start(bare.canonical_json(), "e", bare.run_id, {})
    writer.finish(summary(train(bare, save=writer.save_state), bare, 0.0))
    with pytest.raises(FileNotFoundError, match=f"e/{bare.run_id}.*final.pt"):  # never had one: say how to get it
        measure_experiment(store, "e", ["margin_q5"], run_ids=[bare.run_id])


def test_one_dtype_default_and_inapplicable_measures_skipped():
    """compute() defaults to the trainer's and the CLI's dtype (float32) and takes its name; the least-squares
    measures are skipped on a cross-entropy classifier (not computed: no keys) and computed on the mse loss."""
    from genlab.measures import DEFAULT_DTYPE
    from genlab.spec import RecordSpec

    assert DEFAULT_DTYPE == "float32" == RecordSpec().measure_dtype
    net = toy_net()
    data = toy_data(net)
    seen = []
    net.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0].dtype))
    out = compute(["margin_q5", "min_norm_gap", "design_spectrum"], net, data)
    assert set(out) == {"margin_q5"} and set(seen) == {torch.float32}  # the copy's passes: float32
    assert compute(["margin_q5"], net, data, dtype="float64") == compute(["margin_q5"], net, data, dtype=torch.float64)
    assert compute(["margin_q5"], net, data) == compute(["margin_q5"], net, data, dtype=torch.float32)
    mse = compute(["min_norm_gap", "design_spectrum"], net, replace(data, loss=get_loss("mse")))
    assert "min_norm_gap.distance" in mse and "design_spectrum.lambda_max" in mse
    with pytest.raises(ValueError, match="float16"):
        compute(["margin_q5"], net, data, dtype="float16")
