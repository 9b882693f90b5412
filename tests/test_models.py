"""Every registered model: a batch forward at its data set's shape and on the offline stand-ins, a
deterministic build, and the seeds' parameter counts."""

from __future__ import annotations

import pytest
import torch

from genlab.models import count_params, create_model, list_models

# the shape of the data set each model is trained on in the seeds (000, 002, 003, 004)
SEED_SHAPE = {"mlp": (1, 28, 28), "linear": (3, 32, 32)}
CIFAR = (3, 32, 32)
STAND_INS = [(1, 8, 8), (1, 40)]  # digits; mnist1d with as_image (1-D convolutions)
FLAT_ONLY = {"mlp", "mlp_uniform", "linear"}  # flatten anything, so they also take (64,) and (40,)


@pytest.mark.parametrize("name", list_models())
def test_batch_forward_at_seed_shape(name):
    shape = SEED_SHAPE.get(name, CIFAR)
    torch.manual_seed(0)
    model = create_model(name, shape, 10).eval()
    with torch.no_grad():
        out = model(torch.randn(3, *shape))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("shape", STAND_INS)
@pytest.mark.parametrize("name", list_models())
def test_batch_forward_on_stand_ins(name, shape):
    model = create_model(name, shape, 10)  # train mode: BatchNorm needs batch > 1 per channel
    out = model(torch.randn(4, *shape))
    out.sum().backward()
    assert out.shape == (4, 10)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_deterministic_build(name):
    shape = (1, 8, 8)

    def build():
        torch.manual_seed(123)
        return create_model(name, shape, 10).state_dict()

    a, b = build(), build()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# (name, options, input shape, count, where the count comes from)
COUNTS = [
    ("mlp_uniform", {"width": 32, "depth": 2, "dropout": 0.5}, (1, 8, 8), 3_466, "64·32+32 + 32·32+32 + 32·10+10"),
    ("nin", {"depth": 2, "width": 8}, CIFAR, 1_302, "blocks (3·9·8+8) + (8·9·8+8) + 4(8·8+8) + 6·16 BN; 8·10+10 + 20 BN"),
    ("convnet3", {"width": 64}, CIFAR, 148_160, "000 §4: 64·5·5·3 + 64·5·5·64 + 64·8·8·10"),
    ("convnet3", {"width": 32}, CIFAR, 48_480, "000 figs. 4-2..4-4 (same formula, width 32)"),
    ("conv4", {"width": 4}, CIFAR, 6_666, "003 §3.2: p = 6666"),
    ("conv4", {"width": 64}, CIFAR, 1_558_026, "003 §3.3: p = 1558026"),
    ("tweaks_cnn", {}, CIFAR, 1_250_858, "002 §2: about 1,250,000"),
    ("resnet20", {}, CIFAR, 269_722, "He et al. table 6: 0.27M"),
    ("resnet32", {}, CIFAR, 464_154, "He et al. table 6: 0.46M"),
    ("resnet56", {}, CIFAR, 853_018, "He et al. table 6: 0.85M (000 ch. 4)"),
    ("resnet", {"depth": 56}, CIFAR, 853_018, "the same through the generic entry"),
    ("vgg16_bn", {}, CIFAR, 14_728_266, "004: VGG-16-BN, ~15M on CIFAR"),
    ("vgg11_bn", {}, CIFAR, 9_231_114, "VGG-11-BN, CIFAR head"),
    ("mlp", {"widths": [1024]}, (1, 28, 28), 784 * 1024 + 1024 + 1024 * 10 + 10, "004: 2-layer MLP on MNIST"),
]


@pytest.mark.parametrize("name,options,shape,count,source", COUNTS, ids=[f"{c[0]}-{c[3]}" for c in COUNTS])
def test_parameter_counts_match_the_seeds(name, options, shape, count, source):
    assert count_params(create_model(name, shape, 10, **options)) == count, source


def test_bad_options_raise_value_errors():
    with pytest.raises(ValueError, match="depth"):
        create_model("resnet", CIFAR, 10, depth=21)
    with pytest.raises(ValueError, match="dropout"):
        create_model("tweaks_cnn", CIFAR, 10, dropout=1.5)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        create_model("convnet3", (64,), 10)
