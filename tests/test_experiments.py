"""Every study under experiments/ loads under every profile, and its figures and findings name registered
functions with valid options — so a typo in a spec fails here, not after hours of training."""

import json
from pathlib import Path

import pytest

from genlab.spec import loader as experiment
from genlab.spec.loader import tomllib
from genlab.figures import get_figure
from genlab.figures.style import FIELD
from genlab.findings import get_finding
from genlab.registry import options_model
from genlab.tables import flatten

SPECS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*/*.toml"))
CASES = [(p, prof) for p in SPECS for prof in [None, *tomllib.loads(p.read_text()).get("profiles", {})]]


def test_there_are_studies_for_every_seed():
    assert {p.parent.name for p in SPECS} == {"000", "002", "003", "004", "analysis"}  # analysis: across seeds


@pytest.mark.parametrize("path, profile", CASES, ids=[f"{p.parent.name}/{p.stem}:{prof}" for p, prof in CASES])
def test_spec_loads_and_names_valid_figures_and_findings(path, profile):
    exp = experiment.load(path, profile)
    assert exp.runs and len({r.run_id for r in exp.runs}) == len(exp.runs)
    for kind, entries, get, ignore in (("figure", exp.figures, get_figure, ("name", "file")),
                                       ("finding", exp.findings, get_finding, ("name", "claim", "figure"))):
        for entry in entries:
            fn = get(entry["name"])
            options_model(fn, entry["name"]).model_validate({k: v for k, v in entry.items() if k not in ignore})
    files = {e.get("file") for e in exp.figures}
    assert all(f["figure"] in files for f in exp.findings if "figure" in f), f"a finding names no figure of {files}"
    columns = set(flatten(json.loads(exp.runs[0].config.model_dump_json())))
    for entry in exp.figures:  # a title's {fields} are config columns of the runs drawn
        assert set(FIELD.findall(entry.get("title", ""))) <= columns, (entry.get("file"), columns)
    if profile == "small":  # the laptop profile uses offline data only
        offline = {"separable", "gaussian_regression", "digits", "mnist1d"}
        names = {r.config.data.options.get("base", r.config.data.name) for r in exp.runs}  # train_flipped wraps one
        assert names <= offline, f"a small profile must not need downloads: {names - offline}"
