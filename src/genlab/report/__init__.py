"""The report: one self-contained HTML page that opens with a verdict table (every seed claim, our number ±
its error, agrees / differs / no effect / inconclusive / not judged, a link), then one section per experiment,
grouped by seed and chapter. page.py assembles the page (sections, figures, results per sweep point),
claims.py judges the findings and writes the verdict table, ranking.py the `[analysis]` section (measures
ranked by how well they predict the gap). It reads the store through the query API only; it never trains.
"""

from genlab.report.claims import Judged, Section, figure_of, judge, number  # noqa: F401
from genlab.report.page import CSS, figure_html, order_key, provenance, render, summary_table  # noqa: F401
