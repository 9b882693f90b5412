"""No store file is unpickled: every torch.load in src/ reads plain tensors (weights_only=True), and a pickle
that would run code — in final.pt, init.pt, a checkpoint, resume.pt or a data file — runs none, whatever a
hostile writer does to the manifest or the hash."""

import io
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.spec import loader as experiment
from genlab.executors import pending
from genlab.executors.local import run_local
from genlab.executors.measure import load_state
from genlab.store.runfiles import write_done
from genlab.store import Store

SRC = Path(genlab.__file__).resolve().parent


def test_every_torch_load_in_src_reads_with_weights_only_true():
    calls = []
    for f in SRC.rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth:  # the call's whole argument list, however many lines
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            calls.append((f.relative_to(SRC), text[m.start():i]))
    assert calls, "the scan found no torch.load: it is looking in the wrong place"
    bad = [(f, c) for f, c in calls if "weights_only=True" not in c.replace(" ", "")]
    assert not bad, f"torch.load without weights_only=True: {bad}"
    unpickles = [(f.relative_to(SRC), line) for f in SRC.rglob("*.py") for line in f.read_text().splitlines()
                 if re.search(r"pickle\.loads?\(|\bUnpickler\(.*\)\.load\(|np\.load\(.*allow_pickle=True", line)]
    assert not unpickles, f"unrestricted unpickling: {unpickles}"


class Evil:
    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


SPEC = """
name = "evil"
seeds = [0]
[data]
name = "separable"
dim = 4
n_train = 64
n_test = 32
[model]
name = "linear"
[train]
epochs = 2
batch_size = 16
[record]
save_init = true
checkpoint_epochs = [1]
"""


@pytest.mark.parametrize("name", ["final.pt", "init.pt", "epoch_1.pt"])
def test_a_hostile_checkpoint_runs_no_code_even_re_stamped(write_spec, tmp_path, name):
    exp = experiment.load(write_spec(SPEC), profile=None)
    st = Store(tmp_path / "s")
    run_local(pending(exp, st), st)
    rid = exp.runs[0].run_id
    d = st.run_dir("evil", rid)
    assert (d / name).exists()
    flag = tmp_path / "PWNED"
    torch.save({"weight": Evil(flag)}, d / name)
    write_done(d)  # a writer who re-stamps the manifest: the run looks intact
    assert st.is_done("evil", rid)
    with pytest.raises(ValueError, match=rf"{name} is not a file of plain tensors \(UnpicklingError"):
        load_state(st, "evil", rid, name, torch.device("cpu"), required=True)
    assert not flag.exists()


def test_a_hostile_cifar_batch_runs_no_code(tmp_path):
    from genlab.data import files

    flag = tmp_path / "PWNED"
    path = tmp_path / "cifar.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("data_batch_1", "test_batch"):
            blob = pickle.dumps({b"data": Evil(flag), b"labels": [0]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(pickle.UnpicklingError, match="refused global posix.system|refused global os.system"):
        files.read_cifar10_tar(path)
    assert not flag.exists()
    good = files.write_cifar10_tar(tmp_path / "ok.tar.gz", np.zeros((4, 3, 32, 32), np.uint8), np.arange(4),
                                   np.ones((2, 3, 32, 32), np.uint8), np.arange(2), n_batches=2)
    xtr, ytr, xte, yte = files.read_cifar10_tar(good)  # arrays still load
    assert xtr.shape == (4, 3, 32, 32) and ytr.tolist() == [0, 1, 2, 3] and int(xte.sum()) == 2 * 3 * 32 * 32
