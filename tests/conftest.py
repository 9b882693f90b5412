import textwrap
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny models: threads only add overhead, and CI has 2 cores

TINY = """
name = "tiny"
seeds = [0]
[data]
name = "separable"
dim = 3
n_train = 64
n_test = 64
[model]
name = "linear"
[init]
name = "normal"
std = 0.1
bias = "same"
[optim]
lr = 0.1
[train]
epochs = 4
batch_size = 8
[sweep]
"init.std" = [0.01, 0.1]
[[figures]]
name = "curves"
file = "tiny_curves"
hue = "init.std"
[profiles.small]
data.n_train = 32
"""


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec TOML (dedented) into tmp_path and return its path."""

    def write(text: str = TINY, name: str = "spec.toml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return write


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch):
    monkeypatch.delenv("GENLAB_STORE", raising=False)
    yield
