"""Evaluation of a trained (or training) network: loss and error per split, per-class accuracy, measures.

Sums stay on the device until the end of a split (one host sync per split, not per batch), accumulated in
float64 so that the numbers do not depend on the evaluation batch size beyond float32 rounding of each batch.
A network whose outputs are not finite has error NaN, never the argmax of NaN.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.data import Dataset
from genlab.losses import Loss, error_fn
from genlab.measures.objective import rows_per_pass
from genlab.spec import RecordSpec


def splits(data: Dataset) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every split evaluated each epoch: train, test and the data set's extra tests (val, flipped, ...)."""
    return {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test), **data.extra_tests}


def finish(total: torch.Tensor, wrong: torch.Tensor, bad: torch.Tensor, n: int, has_errors: bool) -> dict[str, float]:
    """(loss sum, error count, any non-finite output) accumulated on the device → mean loss and error rate."""
    total, wrong, bad = float(total), int(wrong), bool(bad)
    n = max(n, 1)
    error = float("nan") if (bad or not has_errors) else wrong / n
    return {"loss": total / n, "error": error}


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, x: torch.Tensor, y: torch.Tensor, loss: Loss,
             batch_size: int) -> dict[str, float]:
    """Mean loss and error rate over (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    errs = error_fn(loss, data.num_classes)
    dev = x.device
    total = torch.zeros((), dtype=torch.float64, device=dev)
    wrong = torch.zeros((), dtype=torch.int64, device=dev)
    bad = torch.zeros((), dtype=torch.bool, device=dev)
    rows = batch_size
    for i in range(0, len(x), batch_size):
        xb, yb = data.inputs(x[i:i + batch_size]), y[i:i + batch_size]
        if i == 0:  # a batch in cache-sized passes on a CPU (the same sums, to rounding)
            rows = min(batch_size, rows_per_pass(model, xb, default=batch_size))
        for j in range(0, len(xb), rows):
            out, t = model(xb[j:j + rows]), yb[j:j + rows]
            total += loss.per_sample(out, t).sum().double()
            bad |= ~torch.isfinite(out).all()
            if errs is not None:
                wrong += errs(out, t).sum()
    model.train(was_training)
    return finish(total, wrong, bad, len(x), errs is not None)


def evaluate_splits(model: nn.Module, data: Dataset, loss: Loss, batch_size: int) -> dict[str, float]:
    """{split_loss, split_error} for every split of `data`."""
    row = {}
    for split, (x, y) in splits(data).items():
        m = evaluate(model, data, x, y, loss, batch_size)
        row[f"{split}_loss"], row[f"{split}_error"] = m["loss"], m["error"]
    return row


def per_class(model: nn.Module, data: Dataset, loss: Loss) -> dict[str, list[float]]:
    """Per-class test accuracy (and on each extra test set, e.g. flipped), for argmax classifiers."""
    if data.num_classes is None or loss.num_outputs(data.num_classes) != data.num_classes:
        return {}  # regression, or one-output binary losses
    from genlab.data.labels import per_class_accuracy

    return {k: per_class_accuracy(model, data, x, y).tolist() for k, (x, y) in splits(data).items() if k != "train"}


def measure(model: nn.Module, data: Dataset, loss: Loss, init_state: dict, rec: RecordSpec) -> dict[str, float]:
    """`rec.measures` of the current weights, with `rec.measure_options`, on a copy in `rec.measure_dtype`."""
    if not rec.measures:
        return {}
    from genlab.measures import MeasureData, compute, get_measure, parse_dtype
    from genlab.registry import validate_options

    options = {name: validate_options(get_measure(name), name, opts, "measure")
               for name, opts in rec.measure_options.items()}  # JSON → typed (e.g. a config dataclass)
    return compute(list(rec.measures), model, MeasureData.from_dataset(data, loss, init_state=init_state),
                   options=options, dtype=parse_dtype(rec.measure_dtype))
