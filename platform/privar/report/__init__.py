"""The Pareto front of a study as a text table, ``pareto.csv``, ``pareto.png`` and
``report.html``.

No MLflow here: the caller reads the study's runs back and passes plain rows, one dict per run:

=================  ==========================================================================
``run_id``         the MLflow run id (str)
``kind``           ``"trial"`` (a searched candidate) or ``"baseline"`` (identity, downsample...)
``encoder``        the encoder's registry name (str)
``params``         the key parameters, dotted study names: ``{"adversarial.alpha": 2.0}``
``action_acc``     action accuracy in [0, 1] (the fresh action model's, after the farm)
``privacy_acc``    worst-case privacy accuracy in [0, 1] (``privacy_acc_worst``)
``recon_psnr``     optional: the reconstruction attack's PSNR in dB (None or absent: not run)
``name``           optional: the MLflow run's name, what plots and pages call the row
``trial``          optional: the search's trial id
``on_front``       bool, set by :func:`mark_front`
=================  ==========================================================================

Only trials can be on the front: the front is the set of candidates the search offers, and
:func:`mark_front` ignores baselines. Baselines are drawn on the plot and shown on the page for
reference (what no privacy and naive privacy cost), never listed in the table or the CSV. A
missing metric (None, NaN) keeps a row off the front.

The parts: :mod:`~privar.report.rows` (marking the front), :mod:`~privar.report.table` (text
table and CSV), :mod:`~privar.report.plot` (the PNG), :mod:`~privar.report.page` (the HTML).
"""

from privar.report.page import write_page
from privar.report.plot import BASELINE_MARKERS, draw_front, plot_front, spread
from privar.report.rows import (
    Row,
    format_params,
    front_rows,
    knee_run_id,
    label,
    mark_front,
    metric,
    points,
)
from privar.report.table import ACC_FMT, IN_LOOP, csv_columns, format_table, write_csv

__all__ = [
    "ACC_FMT",
    "BASELINE_MARKERS",
    "IN_LOOP",
    "Row",
    "csv_columns",
    "draw_front",
    "format_params",
    "format_table",
    "front_rows",
    "knee_run_id",
    "label",
    "mark_front",
    "metric",
    "plot_front",
    "points",
    "spread",
    "write_csv",
    "write_page",
]
