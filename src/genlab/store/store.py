"""The run store's `Store`: run folders claimed, resumable and checked; run states; results()/history() as
pandas tables. The layout is in genlab.store's docstring."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from genlab.store import claims, integrity
from genlab.paths import check_name, under
from genlab.store.integrity import DONE, Damage
from genlab.store.defaults import with_omitted_defaults  # old and new runs: the same config columns
from genlab.tables import flatten
if TYPE_CHECKING:  # pandas loads with the first table (0.3 s): `genlab ls` and writers never need it
    import pandas as pd

from genlab.store.files import FILE_MODE, atomic_write, read_json, read_jsonl, write_json  # noqa: F401
from genlab.store.runfiles import ERROR, RESUME, BadResume, RunWriter, unpack_resume, write_done, write_error


class StoreError(ValueError):
    """A store file or folder genlab cannot read or write; the message names it and what to do."""


def os_advice(e: OSError, store: bool = True) -> str:
    """What to do about an OSError, in a few words (`store`: the file is the store's, --store moves it)."""
    elsewhere = "choose another --store" if store else "write elsewhere"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full: free space or {elsewhere}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "it is not writable/readable by you: check its permissions" + (f" or {elsewhere}" if store else "")
    return e.strerror or type(e).__name__


RUN_ID = re.compile(r"[0-9a-f]{12}")  # integrity.config_id: the first 12 hex digits of the config's SHA-256


def default_root() -> Path:
    return Path(os.environ.get("GENLAB_STORE", "runs"))

@dataclass(frozen=True)
class RunState:
    """What a run is now: done | damaged | running | stale | failed | pending."""

    kind: str
    detail: str = ""  # damaged: "file: why"; running/stale: the holder; failed: the error; pending: progress
    holder: claims.Holder | None = None
    epoch: int | None = None  # the last epoch logged (running, stale, failed, pending)


def _warn_stderr(experiment: str, run_id: str, damage: Damage) -> None:
    print(f"warning: skipping damaged run {experiment}/{run_id}: {damage}", file=sys.stderr)


class Store:
    """A run store at `root`. `lease_timeout`: seconds after which a silent claim is stale (default 300 s or
    $GENLAB_LEASE_TIMEOUT). `warn(experiment, run_id, damage)` is told of each damaged run a query skips."""

    def __init__(self, root: str | Path | None = None, *, lease_timeout: float | None = None,
                 warn: Callable[[str, str, Damage], None] | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.lease_timeout = claims.default_timeout() if lease_timeout is None else lease_timeout
        self.warn = warn or _warn_stderr
        self._checked: dict[Path, tuple[tuple, Damage | None]] = {}

    def run_dir(self, experiment: str, run_id: str) -> Path:
        """<root>/<experiment>/<run_id>, checked: both are plain names and the path stays under the root."""
        return under(self.root, check_name(experiment, "experiment name"), check_name(run_id, "run id"))

    def check_writable(self) -> None:
        """Create the root if needed and write a probe file there: a full or read-only store fails here once,
        with one message, not once per run."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".probe.")
            with os.fdopen(fd, "wb") as f:
                f.write(b"genlab" * 1024)
                f.flush()
                os.fsync(f.fileno())
            os.unlink(probe)
        except OSError as e:
            raise StoreError(f"store {self.root}: cannot write there ({os_advice(e)})") from None

    def has_done(self, experiment: str, run_id: str) -> bool:
        """DONE is there (intact or damaged)."""
        return (self.run_dir(experiment, run_id) / DONE).exists()

    def is_done(self, experiment: str, run_id: str) -> bool:
        """Finished and intact (see `damage`)."""
        d = self.run_dir(experiment, run_id)
        return (d / DONE).exists() and self.damage(experiment, run_id) is None

    def damage(self, experiment: str, run_id: str) -> Damage | None:
        """None if the finished run is intact, else what is wrong (cached while its files are unchanged)."""
        d = self.run_dir(experiment, run_id)
        key = integrity.stamp(d)
        hit = self._checked.get(d)
        if hit is None or hit[0] != key:
            hit = self._checked[d] = (key, integrity.check(d))
        return hit[1]

    # ---- claims and writing --------------------------------------------------------------------------------

    def claim(self, experiment: str, run_id: str, heartbeat: bool = True) -> claims.Lease:
        """Claim a run (raises claims.Busy if a live worker holds it); release it with `.release()` or `with`."""
        return claims.acquire(claims.lease_path(self.root, experiment, run_id), self.lease_timeout, heartbeat)

    def holder(self, experiment: str, run_id: str) -> claims.Holder | None:
        return claims.holder_of(self.root, experiment, run_id)

    def start(self, config_json: str, experiment: str, run_id: str, meta: dict[str, Any],
              lease: claims.Lease | None = None) -> RunWriter:
        """The folder for a run we hold the lease of (claimed here if `lease` is None). A folder with a resume
        state of this same config is continued (`writer.resumed`); any other unfinished one is wiped."""
        owns = lease is None
        lease = self.claim(experiment, run_id) if owns else lease
        try:
            lease.check()
            d = self.run_dir(experiment, run_id)
            if (d / DONE).exists() and self.damage(experiment, run_id) is None:
                raise FileExistsError(f"run {experiment}/{run_id} is already finished; delete {d} to redo it")
            config_text = json.dumps(json.loads(config_json), indent=1, sort_keys=True) + "\n"
            rows, resumed = self._resumable(d, config_text)
            if resumed is None:
                if d.exists():
                    shutil.rmtree(d)
                d.mkdir(parents=True)
                atomic_write(d / "config.json", config_text.encode())
            else:
                (d / ERROR).unlink(missing_ok=True)
                meta = {**meta, "resumed_at_row": rows}
            write_json(d / "meta.json", meta)
            return RunWriter(d, lease, owns, rows, resumed)
        except BaseException:
            if owns:
                lease.release()
            raise

    def _resumable(self, d: Path, config_text: str) -> tuple[int, Any]:
        """(rows, state) of a resume file left in `d` for this config, its metrics cut back to `rows`; else (0, None).
        A resume file that is damaged, foreign or inconsistent with metrics.jsonl is set aside (`set_aside`)."""
        try:
            if (d / DONE).exists() or (d / "config.json").read_text() != config_text or not (d / RESUME).exists():
                return 0, None
            data = (d / RESUME).read_bytes()
        except OSError:
            return 0, None
        try:
            rows, state = check_resume(data, json.loads(config_text))
            lines = (d / "metrics.jsonl").read_bytes().split(b"\n")
            if len(lines) <= rows:  # fewer complete rows than the resume state saw: not consistent
                raise BadResume(f"{RESUME}: made after row {rows}, metrics.jsonl has {len(lines) - 1} complete rows")
        except (BadResume, OSError) as e:
            self.set_aside(d, str(e))
            return 0, None
        atomic_write(d / "metrics.jsonl", b"".join(x + b"\n" for x in lines[:rows]))
        return rows, state

    def set_aside(self, d: Path, why: str) -> Path | None:
        """Move run folder `d`'s resume.pt to <experiment>/.set-aside/<run_id>.<time>.resume.pt (kept for a
        look, never read again) with one warning naming it; the run then starts over. None if there was none."""
        src = d / RESUME
        if not src.exists():
            return None
        try:
            folder = under(d.parent, ".set-aside")
            folder.mkdir(exist_ok=True)
            dest = under(folder, f"{d.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.{RESUME}")
            os.replace(src, dest)
        except (OSError, ValueError) as e:  # no room beside it (or .set-aside leads out): never block the run
            src.unlink()
            print(f"warning: run {d.parent.name}/{d.name}: {why}; deleted it (could not set it aside: {e}); "
                  "the run starts over", file=sys.stderr)
            return None
        print(f"warning: run {d.parent.name}/{d.name}: {why}; set it aside as {dest}; the run starts over",
              file=sys.stderr)
        return dest

    def load_resume(self, experiment: str, run_id: str) -> Any:
        """The object of the run's last `save_resume` (None if it has none), without touching the folder;
        BadResume if it is unusable."""
        path = self.run_dir(experiment, run_id) / RESUME
        if not path.exists():
            return None
        return unpack_resume(path.read_bytes(), str(path))[1]

    def write_error(self, experiment: str, run_id: str, error: BaseException, lease: claims.Lease) -> None:
        """error.json for a run that failed before its writer existed (while we hold its lease): every failed
        run has one, so `status` says failed and the message's pointer to it holds."""
        if lease.renew():
            d = self.run_dir(experiment, run_id)
            d.mkdir(parents=True, exist_ok=True)
            write_error(d / ERROR, error)

    def update_result(self, experiment: str, run_id: str, key: str, values: dict[str, Any],
                      lease: claims.Lease | None = None) -> None:
        """Merge `values` into a finished run's result.json[key] (e.g. measures computed after training) and
        renew its manifest, holding its lease (claimed here if `lease` is None)."""
        owns = lease is None
        lease = self.claim(experiment, run_id) if owns else lease
        try:
            if (damage := self.damage(experiment, run_id)) is not None:
                raise ValueError(f"run {experiment}/{run_id} is damaged ({damage}); `genlab run` redoes it")
            d = self.run_dir(experiment, run_id)
            result = read_json(d / "result.json", dict)
            if not isinstance(result.get(key, {}), dict):
                raise ValueError(f"{d / 'result.json'}: {key} holds {type(result[key]).__name__}, not an object")
            result.setdefault(key, {}).update(values)
            lease.check()
            write_json(d / "result.json", result)
            write_done(d)
        finally:
            if owns:
                lease.release()

    def state(self, experiment: str, run_id: str) -> RunState:
        """done (intact) | running (a live claim) | stale (a dead claim) | damaged | failed | pending."""
        d = self.run_dir(experiment, run_id)
        finished = (d / DONE).exists()
        damage = self.damage(experiment, run_id) if finished else None
        if finished and damage is None:
            return RunState("done")
        holder, epoch = self.holder(experiment, run_id), _last_epoch(d)
        if holder is not None:
            stale = claims.is_stale(holder, self.lease_timeout)
            return RunState("stale" if stale else "running", holder.describe(), holder, epoch)
        if damage is not None:
            return RunState("damaged", str(damage))
        if (d / ERROR).exists():
            try:
                err = read_json(d / ERROR)["error"]
            except (OSError, ValueError, KeyError):
                err = "error.json unreadable"
            return RunState("failed", err, None, epoch)
        return RunState("pending", "" if epoch is None else f"interrupted after epoch {epoch}", None, epoch)

    # ---- queries -------------------------------------------------------------------------------------------

    def experiments(self) -> list[str]:
        if not self.root.is_dir():
            return []
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as e:
            raise StoreError(f"store {self.root}: cannot list it ({os_advice(e)})") from None

    def run_ids(self, experiment: str, done_only: bool = True) -> list[str]:
        """The run folders of `experiment` (names that are run ids: 12 hex digits), finished ones only by default."""
        return [p.name for p in self._folders(experiment)
                if RUN_ID.fullmatch(p.name) and (not done_only or (p / DONE).exists())]

    def stray(self, experiment: str) -> list[str]:
        """Folders in `experiment` that are not runs (their names are not run ids): listed as such, never run."""
        return [p.name for p in self._folders(experiment) if not RUN_ID.fullmatch(p.name)]

    def _folders(self, experiment: str) -> list[Path]:
        d = under(self.root, check_name(experiment, "experiment name"))
        if not d.is_dir():
            return []
        try:
            return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
        except OSError as e:
            raise StoreError(f"{d}: cannot list its runs ({os_advice(e)})") from None

    def finished(self, experiment: str, run_ids: Iterable[str] | None = None) -> list[str]:
        """The finished, intact runs (of `run_ids`, if given); each damaged one is skipped with a warning."""
        return self._select(experiment, run_ids)

    def _select(self, experiment: str, run_ids: Iterable[str] | None) -> list[str]:
        """Finished runs (of `run_ids`, if given) that are intact; each damaged one is skipped with a warning."""
        check_name(experiment, "experiment name")
        if experiment not in self.experiments():
            known = ", ".join(self.experiments()) or "none"
            raise KeyError(f"no experiment {experiment!r} in store {self.root} (present: {known})")
        done = self.run_ids(experiment)
        chosen = done if run_ids is None else [r for r in run_ids if r in set(done)]
        intact = []
        for rid in chosen:
            if (damage := self.damage(experiment, rid)) is None:
                intact.append(rid)
            else:
                self.warn(experiment, rid, damage)
        return intact

    def config(self, experiment: str, run_id: str) -> dict[str, Any]:
        return read_json(self.run_dir(experiment, run_id) / "config.json")

    def results(self, experiment: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per finished run: run_id, one column per config field (dotted), then result fields."""
        rows = []
        for rid in self._select(experiment, run_ids):
            d = self.run_dir(experiment, rid)
            res = read_json(d / "result.json", dict)
            parts = ("final", "measures", "data", "per_class_accuracy")
            if bad := [k for k in parts if not isinstance(res.get(k, {}), dict)]:
                raise ValueError(f"{d / 'result.json'}: {bad[0]} holds {type(res[bad[0]]).__name__}, not an object")
            final, measures = res.pop("final", {}), res.pop("measures", {})
            facts = {f"data_info.{k}": v for k, v in res.pop("data", {}).items()}
            per_class = {f"per_class.{k}": tuple(v) for k, v in res.pop("per_class_accuracy", {}).items()}
            rows.append({"run_id": rid, **flatten(with_omitted_defaults(read_json(d / "config.json", dict))), **res, **final, **measures,
                         **facts, **per_class})
        import pandas as pd

        from genlab.store.pairs import with_pair_means  # pair measures: each run gets its config point's mean

        return with_pair_means(self, experiment, pd.DataFrame(rows))

    def history(self, experiment: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per (run, epoch): run_id, the config columns, then the per-epoch metrics."""
        import pandas as pd

        frames = []
        for rid in self._select(experiment, run_ids):
            d = self.run_dir(experiment, rid)
            m = pd.DataFrame(read_jsonl(d / "metrics.jsonl"))  # a bad line: ValueError naming file and line
            cfg = flatten(with_omitted_defaults(read_json(d / "config.json", dict)))
            frames.append(m.assign(run_id=rid, **{k: [v] * len(m) for k, v in cfg.items()}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def sql(self, experiment: str, query: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Run SQL (DuckDB) over two tables of the experiment: `results` (one row per run) and `history`
        (one row per run and epoch). Dotted config columns need quotes: SELECT "init.std", avg(test_error) ...

        Read-only onto these tables: the connection has no file system (enable_external_access = false, so no
        read_csv/read_text of any file, no COPY TO, no ATTACH, no INSTALL/LOAD of extensions), its settings
        locked (lock_configuration), and only SELECT statements are run (PermissionError otherwise)."""
        import duckdb

        con = duckdb.connect(":memory:", config={"enable_external_access": False,
                                                 "autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False})
        con.execute("SET lock_configuration = true")
        kinds = [st.type for st in con.extract_statements(query)]  # parsed only: nothing has run yet
        if not kinds:
            raise PermissionError("SQL: no statement; write one SELECT over `results` or `history`")
        refused = sorted({k.name for k in kinds if k not in (duckdb.StatementType.SELECT,
                                                             duckdb.StatementType.EXPLAIN)})
        if refused:
            raise PermissionError(f"SQL: only SELECT (read-only onto the store's tables results and history); "
                                  f"refused {', '.join(refused)}")
        con.register("results", self.results(experiment, run_ids))
        if "history" in query.lower():
            con.register("history", self.history(experiment, run_ids))
        return con.execute(query).df()


def check_resume(data: bytes, config: Any) -> tuple[int, Any]:
    """(rows, snapshot) of resume.pt's bytes, hash-checked, read as plain tensors, and a snapshot of this run's
    config (train/resume.py's structure, its epochs and optimizer; rows = its history's length); else BadResume."""
    rows, state = unpack_resume(data)
    train, optim = (config.get(k) if isinstance(config, dict) else None for k in ("train", "optim"))
    if isinstance(train, dict) or isinstance(optim, dict):  # a run's config (tests may store other objects)
        from genlab.train import resume

        try:
            resume.check(state, (train or {}).get("epochs"), (optim or {}).get("name", "sgd"))
        except resume.Foreign as e:
            raise BadResume(f"{RESUME}: {e}") from None
        if rows != len(state["history"]):
            raise BadResume(f"{RESUME}: {rows} metrics rows for a history of {len(state['history'])}")
    return rows, state


def _last_epoch(folder: Path) -> int | None:
    """The epoch of the last complete row of a run's metrics.jsonl (None if it has none)."""
    try:
        with open(folder / "metrics.jsonl", "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 65536, 0))
            lines = f.read().split(b"\n")[:-1]  # the part after the last newline may be half-written
        return int(json.loads(lines[-1])["epoch"]) if lines else None
    except (OSError, ValueError, KeyError, IndexError):
        return None
