"""The run store: one folder per run, the only state genlab keeps.

    <root>/<experiment>/<run_id>/
        config.json     the resolved RunConfig (its canonical JSON hashes to run_id)
        meta.json       provenance: spec file and text, profile, sweep point, git hash, versions, host, device
        metrics.jsonl   one JSON object per epoch (epoch 0 = at initialization)
        result.json     status, stop reason, final metrics, wall time, per-class accuracy, data facts, measures
        init.pt, final.pt, epoch_<e>.pt   state_dicts (optional)
        data_info.pt    the data set's tensors (label-corruption mask, true labels), when it has any
        resume.pt       the latest resume state of an unfinished run (removed when it finishes): plain tensors
                        read with weights_only=True, behind a SHA-256 header (runfiles.pack_resume)
        error.json      a failed run's error and traceback (until it is redone)
        DONE            the completion marker, written last: the manifest (SHA-256 of every file, integrity.py)
    <root>/<experiment>/.leases/<run_id>.json   the claim of the worker writing that run (claims.py)
    <root>/<experiment>/.set-aside/              resume states that could not be used (Store.set_aside)

Every whole file is written atomically (temp file + rename), with one mode for all (0666 less the umask), so
a killed run leaves no half-written file that looks finished. Only the holder of a run's lease writes or
deletes its folder. A run folder without DONE is redone from scratch, unless it holds a resume state
(`RunWriter.save_resume`), which the next holder continues from. The root is `--store`, else $GENLAB_STORE,
else ./runs.

The package: store.py (Store: run folders, states, the results/history tables), files.py (atomic writes,
JSON read back), runfiles.py (a run's writer, resume state, DONE), integrity.py (the manifest), claims.py
(leases), defaults.py (config fields added after runs were stored), pairs.py (values of pairs of runs).
"""

from genlab.store.files import FILE_MODE, atomic_write, read_json, read_jsonl, write_json  # noqa: F401
from genlab.store.integrity import DONE  # noqa: F401
from genlab.store.runfiles import ERROR, RESUME  # noqa: F401
from genlab.store.store import RUN_ID, Store, StoreError, os_advice  # noqa: F401
