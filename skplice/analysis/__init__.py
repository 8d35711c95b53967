"""Reading concept weights: explanations, class summaries, shift, sparsity sweeps, plots.

Functions here take the weights a :class:`~skplice.SpLiCETransformer` returns and give
pandas tables (the weights themselves in long form, explanations, summaries) or
matplotlib figures (plots need ``pip install "skplice[plot]"``).
"""

from skplice.analysis._inspection import (
    class_concept_summary,
    concept_differences,
    format_top_concepts,
    probe_report,
    top_concepts,
)
from skplice.analysis._plotting import (
    plot_class_concepts,
    plot_concept_histogram,
    plot_image_concepts,
    plot_sparsity_curve,
)
from skplice.analysis._shift import concept_shift, concept_shift_over_time
from skplice.analysis._sweep import sparsity_sweep
from skplice.analysis._weights_frame import weights_frame

__all__ = [
    "class_concept_summary",
    "concept_differences",
    "concept_shift",
    "concept_shift_over_time",
    "format_top_concepts",
    "plot_class_concepts",
    "plot_concept_histogram",
    "plot_image_concepts",
    "plot_sparsity_curve",
    "probe_report",
    "sparsity_sweep",
    "top_concepts",
    "weights_frame",
]
