"""What the ``skplice`` command writes: explanations as text or JSON, arrays, plots, and
its messages on stderr.

Files are written whole or not at all: the bytes are built in memory, then moved into
place atomically (:func:`skplice.utils.write_atomic`), so an interrupted or failed run
never leaves a half-written output.
"""

import io
import logging
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skplice.cli._errors import UsageError
from skplice.utils import import_optional, shorten_words, write_atomic

PROG = "skplice"

#: At most this many images are drawn by ``explain --plot`` (one row each).
MAX_PLOT_IMAGES = 20
#: Bars drawn per image by ``explain --plot --top-k 0`` (all concepts would not fit).
MAX_PLOT_CONCEPTS = 20
#: Name of the concept-name array stored inside the ``decompose`` output.
NAMES_KEY = "concept_names"


def explanation_records(images, W, names, cosines, *, top_k, image_mean, skipped=()):
    """One JSON-ready dict per image, in input order.

    ``images`` are the explained images (rows of ``W``); ``skipped`` holds
    ``(position, source, reason)`` for images that could not be read, which get an
    ``error`` and no concepts. ``top_k=0`` lists every non-zero concept.
    """
    from skplice import top_concepts  # pandas: not for --help

    n = top_k or max(W.shape[1], 1)
    top = top_concepts(W, names, n=n)
    nnz = np.diff(sp.csr_matrix(W).indptr)
    records = []
    for row, image in enumerate(images):
        concepts = top[top["sample"] == row]
        records.append(
            {
                "image": image,
                "n_concepts": int(nnz[row]),
                "cosine": float(cosines[row]),
                "image_mean": image_mean,
                "concepts": [
                    {"concept": str(concept), "weight": float(weight)}
                    for concept, weight in zip(
                        concepts["concept"], concepts["weight"], strict=True
                    )
                ],
            }
        )
    # Put the skipped images back at their positions among the explained ones.
    for position, source, reason in sorted(skipped):
        records.insert(position, {"image": source, "error": reason, "concepts": []})
    return records


def format_records(records, *, image_mean):
    """Human-readable text: how the images were centred, then each image and its concepts.

    ``image_mean`` is the centring's label (``"none"`` when not centred).
    """
    blocks = ["not centred" if image_mean == "none" else f"centred by the {image_mean}"]
    for record in records:
        if "error" in record:
            blocks.append(f"{record['image']}\n  could not be read: {record['error']}")
            continue
        shown = len(record["concepts"])
        counts = f"{record['n_concepts']} concepts"
        if shown < record["n_concepts"]:
            counts += f", top {shown} shown"
        header = f"{record['image']}  ({counts}; cosine {record['cosine']:.2f})"
        lines = [f"  {c['weight']:.3f}  {c['concept']}" for c in record["concepts"]]
        blocks.append("\n".join([header, *lines]) if lines else f"{header}\n  (no concept)")
    return "\n\n".join(blocks) + "\n"


def write_weights(path, W, names):
    """Save concept weights as a scipy sparse ``.npz`` holding the concept names too.

    The file is what :func:`scipy.sparse.save_npz` writes, plus an array
    ``concept_names`` (unicode strings, one per column): ``scipy.sparse.load_npz`` reads
    the weights and ``numpy.load(path)["concept_names"]`` the names.
    """
    buffer = io.BytesIO()
    sp.save_npz(buffer, sp.csr_matrix(W), compressed=True)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{NAMES_KEY}.npy", "w") as member:
            np.lib.format.write_array(member, np.asarray(names, dtype=str), allow_pickle=False)
    write_atomic(Path(path), buffer.getvalue())


def write_npy(path, array):
    """Save one array as ``.npy``."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_atomic(Path(path), buffer.getvalue())


def check_plot_path(path, n_images):
    """Fail before any work when the plot cannot be written (format, extra, image count)."""
    import_optional("matplotlib")
    from matplotlib.figure import Figure

    from skplice.cli._inputs import check_output_path

    path = check_output_path(path, "--plot")
    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UsageError(
            f"--plot {path}: unknown image format {path.suffix or '(no extension)'!r}; use "
            f"one of {', '.join('.' + f for f in sorted(formats))} (e.g. concepts.png)."
        )
    if n_images > MAX_PLOT_IMAGES:
        raise UsageError(
            f"--plot draws one row per image, at most {MAX_PLOT_IMAGES}; {n_images} images "
            "were given. Plot fewer images per run."
        )
    return path


def write_plot(path, images, W, names, *, top_k):
    """One figure, one row per image: the image beside a bar chart of its top concepts."""
    from matplotlib.figure import Figure

    from skplice import plot_image_concepts

    fig = Figure(figsize=(9, 3.6 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), 2, squeeze=False)
    W = sp.csr_matrix(W)
    for row, (image, (image_ax, bar_ax)) in enumerate(zip(images, axes, strict=True)):
        n = top_k or MAX_PLOT_CONCEPTS
        plot_image_concepts(image, W[[row]], names, n=n, axes=(image_ax, bar_ax))
        image_ax.set_title(Path(image).name)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lower().lstrip("."), dpi=100)
    write_atomic(Path(path), buffer.getvalue())


# --------------------------------------------------------------------------- messages


def progress(args, long_run):
    """Progress bars: with --verbose, or on a terminal for a long run, never with --quiet."""
    if args.quiet:
        return False
    return bool(args.verbose or (long_run and sys.stderr.isatty()))


def info(args, message):
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr)


@contextmanager
def messages_to_stderr(*, quiet=False):
    """Show library log records as ``skplice: message`` while a command runs.

    Only when nothing configured logging (a plain command line): the handler is removed
    afterwards, so an embedding program's logging is never changed. With ``quiet``, only
    errors are shown (open_clip's "No pretrained weights loaded" for --pretrained none is
    a warning).
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR if quiet else logging.NOTSET)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    handler.addFilter(not_handled_elsewhere)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def not_handled_elsewhere(record):
    """False for records that a handler of their own logger (or a parent) already shows."""
    logger = logging.getLogger(record.name)
    while logger.parent is not None:  # stop below the root, where our handler is
        if logger.handlers:
            return False
        if not logger.propagate:
            break
        logger = logger.parent
    return True


def show_warning(message, category, filename, lineno, file=None, line=None):
    text = shorten_words(str(message))
    print(f"{PROG}: warning: {text}", file=sys.stderr if file is None else file)
