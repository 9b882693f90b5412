"""A corpus of hostile or broken specs (issue 13), each with what must happen: refused with one line naming
the field, or accepted and right (a predicate on the loaded Experiment).

Used by tests/test_hostile_specs.py (every case) and benchmarks/hostile_specs.py (the counts for the note).
Each case edits the tiny spec of conftest.TINY (or replaces it whole) and names the field the refusal must
mention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from conftest import TINY

MARKER = "/tmp/genlab_hostile_marker"  # an injected command would create this file


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes  # the spec file's content
    field: str | None  # refuse: a text the one-line message must contain (the field); None: accept
    check: Callable[[Any], bool] | None = None  # accept: a predicate on the Experiment


def edit(old: str, new: str, text: str = TINY) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def add(extra: str, text: str = TINY) -> str:
    """Insert top-level keys before the first table (TOML top-level keys must come first)."""
    return edit("seeds = [0]\n", "seeds = [0]\n" + extra + "\n", text)


FIG = '[[figures]]\nname = "curves"\nfile = "tiny_curves"\nhue = "init.std"\n'
FINDING = '[[findings]]\nname = "value"\nclaim = "c"\nmetric = "test_error"\n'


def finding(extra: str) -> str:
    return edit("[profiles.small]", FINDING + extra + "\n[profiles.small]")


def figure(extra: str) -> str:
    return edit(FIG, FIG.rstrip("\n") + "\n" + extra + "\n")


def deep(n: int) -> str:
    return add(f"x = {'[' * n}{']' * n}")


CASES: list[Case] = [
    # ---- code in spec text ----
    Case("where_os_system", finding(f"where = \"@pd.io.common.os.system('touch {MARKER}') == 0\""), "findings[0].where"),
    Case("where_import", finding("where = \"__import__('os').system('true') == 0\""), "findings[0].where"),
    Case("where_dunder_attr", finding("where = \"epoch.__class__ == 1\""), "findings[0].where"),
    Case("where_lambda", finding("where = \"(lambda: 1)() == 1\""), "findings[0].where"),
    Case("where_backtick_method", finding("where = \"`data.flips`.str.len() == 0\""), "findings[0].where"),
    Case("where_semicolon", finding("where = \"epoch == 1; import os\""), "findings[0].where"),
    Case("where_assignment", finding("where = \"epoch = 1\""), "findings[0].where"),
    Case("where_number", finding("where = \"1 + 2\""), "findings[0].where"),
    Case("where_not_string", finding("where = 5"), "findings[0].where"),
    Case("where_long", finding(f"where = \"{' and '.join(['epoch == 1'] * 300)}\""), "findings[0].where"),
    Case("where_deep_parens", finding(f"where = \"{'(' * 200}epoch == 1{')' * 200}\""), "findings[0].where"),
    Case("where_config_typo", finding("where = \"`init.sdt` > 0\""), "findings[0].where"),
    Case("figure_where_injection", figure(f"where = \"@pd.io.common.os.system('touch {MARKER}') == 0\""),
         "figures[0]"),
    # ---- names and paths ----
    Case("name_dotdot", edit('name = "tiny"', 'name = ".."'), "name"),
    Case("name_dot", edit('name = "tiny"', 'name = "."'), "name"),
    Case("name_hidden", edit('name = "tiny"', 'name = ".hidden"'), "name"),
    Case("name_slash", edit('name = "tiny"', 'name = "a/b"'), "name"),
    Case("name_absolute", edit('name = "tiny"', 'name = "/tmp/x"'), "name"),
    Case("name_backslash", edit('name = "tiny"', 'name = "a\\\\b"'), "name"),
    Case("name_300", edit('name = "tiny"', f'name = "{"a" * 300}"'), "name"),
    Case("name_empty", edit('name = "tiny"', 'name = ""'), "name"),
    Case("name_number", edit('name = "tiny"', 'name = 5'), "name"),
    Case("name_newline", edit('name = "tiny"', 'name = "a\\nb"'), "name"),
    Case("name_missing", edit('name = "tiny"\n', ''), "name"),
    Case("figure_file_escape", edit('file = "tiny_curves"', 'file = "../../x"'), "figures[0].file"),
    Case("figure_file_absolute", edit('file = "tiny_curves"', 'file = "/tmp/x"'), "figures[0].file"),
    Case("figure_file_hidden", edit('file = "tiny_curves"', 'file = ".x"'), "figures[0].file"),
    # ---- accepted silently and wrong, before ----
    Case("sweep_seed", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, 0.1]\nseed = [0, 1]'), "sweep.seed"),
    Case("top_level_seed", add("seed = 3"), "seed"),
    Case("zip_seed", edit('"init.std" = [0.01, 0.1]',
                          '"init.std" = [0.01, 0.1]\n[[sweep.zip]]\nseed = [1, 2]\n"optim.lr" = [0.1, 0.2]'), "seed"),
    Case("grid_and_zip_same_key", edit('"init.std" = [0.01, 0.1]',
                                       '"init.std" = [0.01, 0.1]\n[[sweep.zip]]\n"init.std" = [1.0, 2.0]'),
         "sweep.zip[0].init.std"),
    Case("two_zips_same_key", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, 0.1]\n[[sweep.zip]]\n'
                                   '"optim.lr" = [1.0]\n[[sweep.zip]]\n"optim.lr" = [2.0]'), "optim.lr"),
    Case("lr_inf", edit("lr = 0.1", "lr = inf"), "optim.lr"),
    Case("lr_nan", edit("lr = 0.1", "lr = nan"), "optim.lr"),
    Case("perturb_std_inf", edit("[optim]", "[events]\nperturb_std = inf\nperturb_epochs = [1]\n[optim]"),
         "events.perturb_std"),
    Case("init_std_inf", edit("std = 0.1", "std = inf"), "init.std"),
    Case("sweep_value_inf", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, inf]'), "sweep.init.std"),
    Case("epochs_true", edit("epochs = 4", "epochs = true"), "train.epochs"),
    Case("batch_size_float", edit("batch_size = 8", "batch_size = 8.5"), "train.batch_size"),
    Case("n_train_bool", edit("data.n_train = 32", "train.batch_size = 8", edit("n_train = 64", "n_train = true")),
         "data.n_train"),
    Case("lr_string", edit("lr = 0.1", 'lr = "0.1"'), "optim.lr"),
    Case("perturb_epoch_late", edit("[optim]", "[events]\nperturb_std = 0.1\nperturb_epochs = [5]\n[optim]"),
         "events.perturb_epochs"),
    Case("perturb_epoch_zero", edit("[optim]", "[events]\nperturb_std = 0.1\nperturb_epochs = [0]\n[optim]"),
         "events.perturb_epochs"),
    Case("checkpoint_epoch_late", edit("[optim]", "[record]\ncheckpoint_epochs = [40]\n[optim]"),
         "record.checkpoint_epochs"),
    Case("cosine_ref_late", edit("[optim]", "[events]\ncosine_ref_epoch = 9\n[optim]"), "events.cosine_ref_epoch"),
    Case("init_std_negative", edit('"init.std" = [0.01, 0.1]', '"optim.lr" = [0.1]', edit("std = 0.1", "std = -1.0")),
         "init.std"),
    Case("sweep_init_std_negative", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, -0.1]'), "init.std"),
    Case("figure_unknown_name", edit('name = "curves"', 'name = "curvez"'), "figures[0].name"),
    Case("figure_unknown_option", edit('hue = "init.std"', 'hue = "init.std"\ncolour = "red"'), "figures[0].colour"),
    Case("figure_bad_option_type", edit('hue = "init.std"', 'hue = "init.std"\nlog_y = "yes"'), "figures[0].log_y"),
    Case("figure_hue_typo", edit('hue = "init.std"', 'hue = "init.sdt"'), "figures[0].hue"),
    Case("finding_unknown_name", edit("[profiles.small]", '[[findings]]\nname = "nope"\n[profiles.small]'),
         "findings[0].name"),
    Case("finding_missing_option", edit("[profiles.small]", '[[findings]]\nname = "value"\n[profiles.small]'),
         "findings[0].metric"),
    Case("finding_claim_number", finding("").replace('claim = "c"', "claim = 5"), "findings[0].claim"),
    Case("figure_without_name", edit('name = "curves"\n', ''), "figures[0].name"),
    # ---- tracebacks, before ----
    Case("profile_not_table", edit("[profiles.small]\ndata.n_train = 32", "[profiles]\nsmall = 5"), "profiles"),
    Case("profiles_string", edit("[profiles.small]\ndata.n_train = 32", "").replace("seeds = [0]",
                                                                                    'seeds = [0]\nprofiles = "small"'),
         "profiles"),
    Case("figures_number", edit("[[figures]]\nname = \"curves\"\nfile = \"tiny_curves\"\nhue = \"init.std\"\n", "")
         .replace("seeds = [0]", "seeds = [0]\nfigures = 5"), "figures"),
    Case("findings_table", add("findings = { name = \"value\" }"), "findings"),
    Case("deep_3000", deep(3000), "nested"),
    Case("deep_40", deep(40), "nested"),
    Case("non_utf8", TINY.encode().replace(b'"tiny"', b'"t\xff\xfeiny"'), "UTF-8"),
    Case("seed_huge", edit("seeds = [0]", "seeds = [100000000000000000000000]"), "seeds"),
    Case("seed_negative", edit("seeds = [0]", "seeds = [-1]"), "seeds"),
    Case("seed_2_64", edit("seeds = [0]", "seeds = [18446744073709551616]"), "seeds"),
    Case("seeds_string", edit("seeds = [0]", 'seeds = "0"'), "seeds"),
    Case("seeds_empty", edit("seeds = [0]", "seeds = []"), "seeds"),
    Case("int_huge_option", edit("dim = 3", "dim = 100000000000000000000000"), "data.dim"),
    Case("digits_n_train_too_big", edit("data.n_train = 32", "data.n_train = 5000", edit(
        '[data]\nname = "separable"\ndim = 3\nn_train = 64\nn_test = 64', '[data]\nname = "digits"\nflatten = true')),
        "n_train"),
    Case("sweep_million", edit('"init.std" = [0.01, 0.1]', "\n".join(
        f'"{k}" = [{", ".join(str(i + 1) for i in range(10))}]' for k in (
            "train.epochs", "train.batch_size", "data.dim", "data.n_test", "data.seed", "train.eval_batch_size"))),
         "sweep"),
    Case("sweep_not_table", edit('[sweep]\n"init.std" = [0.01, 0.1]', "").replace("seeds = [0]",
                                                                                  "seeds = [0]\nsweep = 5"), "sweep"),
    Case("sweep_zip_number", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, 0.1]\nzip = 5'), "sweep.zip"),
    Case("sweep_zip_unequal", edit('"init.std" = [0.01, 0.1]', '"init.std" = [0.01, 0.1]\n[[sweep.zip]]\n'
                                   '"optim.lr" = [1.0]\n"train.epochs" = [1, 2]'), "sweep.zip[0]"),
    Case("sweep_unknown_root", edit('"init.std" = [0.01, 0.1]', '"colour.red" = [1, 2]'), "sweep.colour.red"),
    Case("sweep_unknown_field", edit('"init.std" = [0.01, 0.1]', '"optim.lrr" = [1.0, 2.0]'), "optim.lrr"),
    Case("sweep_scalar", edit('"init.std" = [0.01, 0.1]', '"init.std" = 0.1'), "sweep.init.std"),
    Case("sweep_through_scalar", edit('"init.std" = [0.01, 0.1]', '"optim.lr.x" = [1.0]'), "optim"),
    Case("table_is_number", edit("[train]\nepochs = 4\nbatch_size = 8", "").replace("seeds = [0]",
                                                                                    "seeds = [0]\ntrain = 5"), "train"),
    Case("default_profile_number", add("default_profile = 5"), "profiles"),
    Case("default_profile_unknown", add('default_profile = "huge"'), "profiles"),
    Case("description_number", add("description = 5"), "description"),
    Case("unknown_top_level", add('colour = "red"'), "colour"),
    Case("profile_unknown_field", edit("data.n_train = 32", "data.n_train = 32\ncolour = 1"), "profiles.small.colour"),
    Case("corrupt_prob_above_1", edit('[data]\nname = "separable"\ndim = 3\nn_train = 64\nn_test = 64',
                                      '[data]\nname = "digits"\nflatten = true\ncorrupt_prob = 1.5'),
         "data.corrupt_prob"),
    Case("val_size_negative", edit('[data]\nname = "separable"\ndim = 3\nn_train = 64\nn_test = 64',
                                   '[data]\nname = "digits"\nflatten = true\nval_size = -3'), "data.val_size"),
    Case("betas_out_of_range", edit("lr = 0.1", 'name = "adam"\nlr = 0.1\nbetas = [0.9, 2.0]'), "optim.betas"),
    Case("eval_batch_zero", edit("batch_size = 8", "batch_size = 8\neval_batch_size = 0"), "train.eval_batch_size"),
    Case("milestones_negative", edit("[train]", '[schedule]\nname = "piecewise"\nmilestones = [-1]\n'
                                     'factors = [1.0, 0.1]\n[train]'), "schedule.milestones"),
    Case("epochs_huge", edit("epochs = 4", "epochs = 100000000000"), "train.epochs"),
    Case("measure_options_unlisted", edit("[optim]", "[record]\nmeasure_options = { sharpness = {} }\n[optim]"),
         "record.measure_options.sharpness"),
    Case("not_toml", "name = = 5\n", "TOML"),
    Case("empty_file", "", "name"),
    # ---- issue 24: typed expressions, data that cannot be built ----
    Case("where_len_of_number", finding('where = "len(init.std) == 0"'), "findings[0].where"),
    Case("where_text_times_number", finding("where = \"'a' * 2 == 'a'\""), "findings[0].where"),
    Case("where_unknown_column", finding('where = "no_such_metric > 0"'), "findings[0].where"),
    Case("separable_dim_zero", edit("dim = 3", "dim = 0"), "data"),
    Case("separable_n_train_beyond_memory", edit("data.n_train = 32", "data.n_train = 10000000000"), "data"),
    Case("only_comments", "# a spec still to write\n", "name"),
    # ---- accepted, and right ----
    Case("bom_skipped", b"\xef\xbb\xbf" + TINY.encode(), None, lambda e: e.name == "tiny" and len(e.runs) == 2),
    Case("seeds_repeat_points", edit("seeds = [0]", "seeds = [0, 1, 2]"), None,
         lambda e: sorted(r.config.seed for r in e.runs) == [0, 0, 1, 1, 2, 2]),
    Case("where_len_works", finding('where = "len(`data.name`) > 0 and init.std in [0.01, 0.1]"'), None,
         lambda e: e.findings[0]["where"].startswith("len(")),
    Case("perturb_epoch_last", edit("[optim]", "[events]\nperturb_std = 0.1\nperturb_epochs = [4]\n[optim]"), None,
         lambda e: all(r.config.events.perturb_epochs == [4] for r in e.runs)),
    Case("name_dots_inside", edit('name = "tiny"', 'name = "fig3.4-v2_b"'), None, lambda e: e.name == "fig3.4-v2_b"),
]
