"""Data files on disk: the data root, SHA-256 checks, `fetch`, and the CIFAR-10 / IDX readers (no torchvision).

Every file a data set reads is listed in `SOURCES` with its canonical URL and SHA-256. A file is hashed
before a single byte of it is parsed, so a truncated or substituted download is refused, never half-read.
Downloads go to `<name>.part` and are renamed only once their hash matches.

    root = data_root()                       # $GENLAB_DATA, else $XDG_CACHE_HOME/genlab/data (~/.cache/...)
    path = require("cifar10", "cifar-10-python.tar.gz")   # the checked path, or a DataFileError saying
                                                          # which file, where to put it, which hash
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

ENV_VAR = "GENLAB_DATA"
CHUNK = 1 << 20  # bytes per read while hashing or downloading


class Source(NamedTuple):
    """One canonical file: where it comes from and the SHA-256 of its bytes."""

    filename: str
    url: str
    sha256: str


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # PyTorch's mirror of LeCun's files
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # Xiao et al.'s own bucket

# dataset → its files. Hashes are the published ones (TFDS / Keras / the Fashion-MNIST README).
SOURCES: dict[str, tuple[Source, ...]] = {
    "cifar10": (
        Source("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    ),
    "mnist": tuple(Source(f, _MNIST_URL + f, h) for f, h in (
        ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    )),
    "fashion_mnist": tuple(Source(f, _FASHION_URL + f, h) for f, h in (
        ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    )),
}


class DataFileError(FileNotFoundError):
    """A data file that is missing, unreachable or not the expected bytes; the message says what to do."""


class ChecksumError(ValueError):
    """A file whose SHA-256 differs from the published one (it is never read)."""


def data_root() -> Path:
    """Where data sets live: $GENLAB_DATA, else $XDG_CACHE_HOME/genlab/data, else ~/.cache/genlab/data."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "genlab" / "data"


def sources(dataset: str) -> tuple[Source, ...]:
    if dataset not in SOURCES:
        raise KeyError(f"no files are known for dataset {dataset!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[dataset]


def source(dataset: str, filename: str) -> Source:
    for s in sources(dataset):
        if s.filename == filename:
            return s
    raise KeyError(f"dataset {dataset!r} has no file {filename!r}; its files: "
                   f"{', '.join(s.filename for s in sources(dataset))}")


def file_path(dataset: str, filename: str, root: Path | None = None) -> Path:
    """<root>/<dataset>/<filename>."""
    return (root or data_root()) / dataset / filename


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise ChecksumError unless sha256(path) == expected."""
    got = sha256_of(path)
    if got != expected:
        raise ChecksumError(f"{path} has SHA-256 {got}, expected {expected}; the file is corrupt or not the "
                            f"canonical one. Delete it and run `genlab datasets fetch` again.")


def _missing_message(dataset: str, src: Source, path: Path, why: str) -> str:
    return (f"{dataset}: data file {src.filename} is missing and could not be downloaded ({why}). "
            f"Download {src.url} and put it at {path} (SHA-256 {src.sha256}), or set ${ENV_VAR} to a folder "
            f"holding {dataset}/{src.filename}.")


TIMEOUT_S = float(os.environ.get("GENLAB_FETCH_TIMEOUT", "10"))  # per connect/read: offline fails fast


def download(url: str, dest: Path) -> None:
    """Copy `url` to `dest` with urllib (tests replace this function to simulate no network). Each connect
    and read waits at most TIMEOUT_S seconds, so a black-holed network fails in seconds, not minutes."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f, CHUNK)


def fetch_file(dataset: str, src: Source, root: Path | None = None) -> Path:
    """Download one file (unless already present and correct) and check its SHA-256; return its path."""
    path = file_path(dataset, src.filename, root)
    if path.is_file():
        verify(path, src.sha256)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.{os.getpid()}.part")  # per process: parallel runs may fetch at once
    try:
        download(src.url, part)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise DataFileError(_missing_message(dataset, src, path, f"{type(e).__name__}: {e}")) from None
    try:
        verify(part, src.sha256)
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{dataset}: the download of {src.url} does not have SHA-256 {src.sha256}; "
                            f"nothing was kept. Retry, or put a correct copy at {path}.") from None
    part.replace(path)
    return path


def fetch(dataset: str, root: Path | None = None) -> list[Path]:
    """Download every file of `dataset` that is not yet present, checking each SHA-256."""
    return [fetch_file(dataset, s, root) for s in sources(dataset)]


def require(dataset: str, filename: str, *, download: bool = True, root: Path | None = None) -> Path:
    """The checked path of one data file, downloading it first if missing and `download` is set."""
    src = source(dataset, filename)
    path = file_path(dataset, filename, root)
    if path.is_file():
        verify(path, src.sha256)
        return path
    if not download:
        raise DataFileError(_missing_message(dataset, src, path, "downloads are off"))
    return fetch_file(dataset, src, root)


def status(dataset: str, root: Path | None = None, check: bool = False) -> list[tuple[str, Path, str]]:
    """(filename, path, state) per file; state is "missing", "present" or, with `check`, "ok" / "bad sha256"."""
    out = []
    for s in sources(dataset):
        p = file_path(dataset, s.filename, root)
        state = "missing" if not p.is_file() else "present"
        if check and state == "present":
            state = "ok" if sha256_of(p) == s.sha256 else "bad sha256"
        out.append((s.filename, p, state))
    return out


# ---- readers ---------------------------------------------------------------------------------------------

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # LeCun's IDX type codes


def parse_idx(raw: bytes, where: str = "<idx>") -> np.ndarray:
    """An IDX array (LeCun's MNIST format): magic 0x0000 <type> <ndim>, ndim big-endian uint32 sizes, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{where}: not an IDX file (bad magic {raw[:4].hex()})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    need = int(np.prod(shape)) * dtype.itemsize
    if len(body) != need:
        raise ValueError(f"{where}: IDX header says shape {shape} ({need} bytes) but {len(body)} bytes follow")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzipped (by its .gz suffix) or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return parse_idx(f.read(), str(path))


def write_cifar10_tar(path: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      y_test: np.ndarray, n_batches: int = 5, compresslevel: int = 9) -> Path:
    """Write images in cifar-10-python.tar.gz's layout (what `read_cifar10_tar` reads): data_batch_1..n and
    test_batch under cifar-10-batches-py/, pickled dicts of b"data" (n, 3072) uint8 and b"labels".

    For tests and benchmarks that need CIFAR-shaped files without the real ones (x: (n, 3, 32, 32) uint8).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(x_train)), n_batches)
    members = {f"data_batch_{i + 1}": (x_train[p], y_train[p]) for i, p in enumerate(parts)}
    members["test_batch"] = (x_test, y_test)
    with tarfile.open(path, "w:gz", compresslevel=compresslevel) as tar:
        for name, (x, y) in members.items():
            blob = pickle.dumps({b"data": x.reshape(len(x), -1), b"labels": [int(v) for v in y]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


class ArraysOnly(pickle.Unpickler):
    """An unpickler for CIFAR's batches that builds numpy arrays and plain containers and nothing else: any
    other global (os.system, …) is refused before it could run, so even a forged file runs no code."""

    SAFE = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.SAFE:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR batch holds only arrays")
        return super().find_class(module, name)


def read_cifar10_tar(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10's python pickles, read straight from the tar.gz (data_batch_1..5, test_batch).

    Returns x_train (50000, 3, 32, 32) uint8, y_train (50000,) int64, x_test (10000, 3, 32, 32), y_test.
    Each batch holds b"data" (n, 3072) uint8, row-major R then G then B planes, and b"labels" (n,).
    """
    batches: dict[str, dict] = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            base = m.name.rsplit("/", 1)[-1]
            if m.isfile() and (base.startswith("data_batch_") or base == "test_batch"):
                batches[base] = ArraysOnly(tar.extractfile(m), encoding="bytes").load()  # hash-checked too
    train_names = sorted(n for n in batches if n.startswith("data_batch_"))
    if not train_names or "test_batch" not in batches:
        raise ValueError(f"{path}: no data_batch_* / test_batch members; is it cifar-10-python.tar.gz?")

    def xy(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([np.asarray(batches[n][b"data"], dtype=np.uint8) for n in names])
        y = np.concatenate([np.asarray(batches[n][b"labels"], dtype=np.int64) for n in names])
        return x.reshape(-1, 3, 32, 32), y

    return (*xy(train_names), *xy(["test_batch"]))
