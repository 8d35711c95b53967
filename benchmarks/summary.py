"""One line per setting from the tables that ``benchmarks.solvers`` saved.

    python -m benchmarks.summary                     # text table of benchmarks/results/
    python -m benchmarks.summary --format rst        # the csv-table of docs/benchmarks.rst

For each ``solvers-*.csv`` file: the floor, skplice's active-set solver (time, multiple of
the floor, samples/s, accuracy against the best solution found, memory against the
bound), the transformer end to end, and the speed-up over scikit-learn's per-sample
``Lasso`` and ``sparse_encode`` where they ran (per-sample rates, since the slow methods
run on the first samples only).
"""

import argparse
import re
from pathlib import Path

import pandas as pd

from benchmarks._methods import LABELS
from benchmarks._report import RESULTS_DIR

NAME = re.compile(
    r"solvers-(?P<kind>\w+)-n(?P<n_samples>\d+)-k(?P<n_concepts>\d+)-d(?P<d>\d+)"
    r"-l1_(?P<l1>[\d.]+)-(?P<device>\w+)\.csv"
)
COLUMNS = {
    "kind": "{}",
    "n_samples": "{:,}",
    "n_concepts": "{:,}",
    "d": "{}",
    "l1": "{:g}",
    "floor (s)": "{:.3f}",
    "active_set (s)": "{:.3g}",
    "x floor": "{:.1f}",
    "samples/s": "{:,.0f}",
    "transformer (s)": "{:.3g}",
    "vs Lasso": "{:,.0f}x",
    "vs sparse_encode": "{:,.0f}x",
    "mean rel gap": "{:.0e}",
    "same support": "{:.3f}",
    "mean l0": "{:.1f}",
    "peak / bound": "{:.2f}",
}


def _rate(table, method):
    """Seconds per sample of ``method`` in ``table``, or None when it did not run."""
    rows = table[table["method"] == LABELS[method]]
    if rows.empty:
        return None
    return float(rows["wall (s)"].iloc[0]) / float(rows["samples"].iloc[0])


def summarise(results_dir):
    """The summary DataFrame of every solvers table in ``results_dir``, sorted by setting."""
    lines = []
    for path in sorted(Path(results_dir).glob("solvers-*.csv")):
        match = NAME.fullmatch(path.name)
        if match is None:
            continue
        table = pd.read_csv(path)
        active = table[table["method"] == LABELS["active_set"]]
        if active.empty:
            continue
        active = active.iloc[0]
        per_sample = _rate(table, "active_set")
        setting = match.groupdict()
        line = {
            "kind": setting["kind"],
            "n_samples": int(setting["n_samples"]),
            "n_concepts": int(setting["n_concepts"]),
            "d": int(setting["d"]),
            "l1": float(setting["l1"]),
            "floor (s)": float("nan"),
            "active_set (s)": active["wall (s)"],
            "x floor": float("nan"),
            "samples/s": active["samples/s"],
            "transformer (s)": float("nan"),
            "vs Lasso": float("nan"),
            "vs sparse_encode": float("nan"),
            "mean rel gap": active["mean rel gap"],
            "same support": active["same support"],
            "mean l0": active["mean l0"],
            "peak / bound": active.get("peak / bound", float("nan")),
        }
        floor = _rate(table, "floor")
        if floor is not None:
            line["floor (s)"] = floor * active["samples"]
            line["x floor"] = per_sample / floor
        transformer = _rate(table, "transformer")
        if transformer is not None:
            line["transformer (s)"] = transformer * active["samples"]
        for method, column in (("lasso", "vs Lasso"), ("sparse_encode", "vs sparse_encode")):
            rate = _rate(table, method)
            if rate is not None:
                line[column] = rate / per_sample
        lines.append(line)
    if not lines:
        raise SystemExit(f"No solvers-*.csv table with an active_set row in {results_dir}.")
    summary = pd.DataFrame(lines).sort_values(["kind", "d", "n_concepts", "n_samples", "l1"])
    return summary.reset_index(drop=True)


def formatted(summary):
    """The summary as text: '-' where a method did not run, no column where none did."""
    return pd.DataFrame(
        {
            column: [("-" if pd.isna(value) else fmt.format(value)) for value in summary[column]]
            for column, fmt in COLUMNS.items()
            if not summary[column].isna().all()
        }
    )


def to_rst(summary):
    """A ``csv-table`` directive body for the documentation."""
    cells = formatted(summary)
    quoted = ", ".join(f'"{column}"' for column in cells.columns)
    lines = [".. csv-table::", f"   :header: {quoted}", "   :widths: auto", ""]
    for _, row in cells.iterrows():
        lines.append("   " + ", ".join(f'"{value}"' for value in row))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--format", choices=["text", "markdown", "rst"], default="text")
    args = parser.parse_args(argv)
    summary = summarise(args.results_dir)
    cells = formatted(summary)
    if args.format == "rst":
        print(to_rst(summary))
    elif args.format == "markdown":
        print("| " + " | ".join(cells.columns) + " |")
        print("|" + "---|" * len(cells.columns))
        for _, row in cells.iterrows():
            print("| " + " | ".join(row) + " |")
    else:
        print(cells.to_string(index=False))
    return summary


if __name__ == "__main__":
    main()
