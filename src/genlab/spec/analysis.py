"""The `[analysis]` table of a spec: what `genlab report` ranks and how (checked when the spec loads).

    [analysis]
    gap = "test_error - train_error"     # a formula of result columns (genlab.analysis.gap)
    measures = ["dist_from_init", "pacbayes_flatness.sigma"]   # default: every recorded measure
    statistics = ["kendall_tau", "cmi_pgdl"]                    # default: every registered statistic
    figure_measures = 12                 # μ-vs-gap figures for the first this many measures of the ranking
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genlab.registry import lookup

DEFAULT_GAP = "test_error - train_error"  # = train accuracy − test accuracy, PGDL's gap, in error-rate units


class AnalysisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gap: str = DEFAULT_GAP
    measures: list[str] | None = None  # result columns; None: every column a registered measure wrote
    statistics: list[str] | None = None  # registered statistics; None: all
    axes: list[str] | None = None  # config columns; None: those that vary
    n_test: int | None = Field(None, ge=1)  # the test-set size, for stores that do not record it
    figure_measures: int = Field(12, ge=0)  # μ-vs-gap figures in the report, for the top of the ranking

    @field_validator("statistics")
    @classmethod
    def _known(cls, names):
        for n in names or []:
            lookup("statistic").get(n)  # KeyError listing the known statistics
        return names

    def options(self) -> dict:
        """The keyword arguments of `genlab.analysis.analyze`."""
        return {"measures": self.measures, "gap": self.gap, "statistics": self.statistics, "axes": self.axes,
                "n_test": self.n_test}
