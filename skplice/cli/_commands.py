"""The ``skplice`` command: explain images in concepts, embed them, decompose embeddings.

Run ``skplice --help`` (or ``python -m skplice --help``) for the commands and
``skplice COMMAND --help`` for their options. Exit status: 0 on success, 1 when
something fails while running (a download, a missing optional package, writing a file),
2 when the arguments or input files are invalid. Errors are one message on stderr;
``--debug`` shows the traceback instead.
"""

import argparse
import logging
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skplice._version import __version__
from skplice.cli._inputs import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    EXIT_FAILURE,
    EXIT_USAGE,
    MIN_INPUTS_FOR_MEAN,
    CommandError,
    UsageError,
    centring_mode,
    check_image_paths,
    check_mean_source,
    check_output_path,
    check_vocabulary,
    image_mean_hint,
    load_matrix,
    load_names,
    mean_label,
    published_mean_model,
    read_image_mean_file,
    register_model_config,
    resolve_pretrained,
    vocabulary_hint,
)
from skplice.cli._outputs import (
    MAX_PLOT_IMAGES,
    check_plot_path,
    explanation_records,
    format_records,
    write_npy,
    write_plot,
    write_weights,
)
from skplice.exceptions import ImageLoadError, SkippedImagesWarning
from skplice.utils._text import shorten_words

__all__ = ["main"]

PROG = "skplice"

_DESCRIPTION = """\
Explain CLIP image embeddings as sparse, non-negative combinations of
human-readable concepts (SpLiCE: Bhalla, Oesterling et al., NeurIPS 2024).
"""

_EPILOG = f"""\
examples:
  skplice explain photo.jpg                      # top 10 concepts of one photo
  skplice explain photos/*.jpg --top-k 5 --json > concepts.json
  skplice explain photo.jpg --plot photo-concepts.png
  skplice embed photos/*.jpg --output embeddings.npy
  skplice decompose --input embeddings.npy --output weights.npz

The first run downloads the CLIP model ({DEFAULT_MODEL}, {DEFAULT_PRETRAINED}, about
600 MB, into the Hugging Face cache), the concept vocabulary and the SpLiCE authors'
mean image embedding of the model, and encodes the vocabulary once (cached in
$SKPLICE_HOME, default ~/.cache/skplice). Offline, give a local checkpoint, a
vocabulary file and the mean (a checkpoint does not say whose weights it holds):
  skplice explain photo.jpg --pretrained open_clip_pytorch_model.bin \\
      --vocabulary words.txt --image-mean open_clip_ViT-B-32_image.pt

exit status: 0 success; 1 a failure while running (download, missing package,
writing a file); 2 invalid arguments or input files.
Run 'skplice COMMAND --help' for the options of a command.
"""

_CENTRING_HELP = f"""\
centring (--image-mean):
  SpLiCE subtracts the mean CLIP embedding of a large image dataset before
  decomposing: CLIP puts images and texts in different regions of its space, and
  centring lets image embeddings be written with text concepts. The mean comes from:
    published  the SpLiCE authors' mean for the model (computed on MSCOCO for
               {DEFAULT_MODEL} {DEFAULT_PRETRAINED}; also published for ViT-B-32,
               ViT-B-16 and RN50 with the openai weights), downloaded on first use.
               The paper's method, and the right choice for one or a few images.
    FILE       a .npy (or torch .pt) file: a mean embedding, shape (d,), or
               embeddings to average, shape (n, d), e.g. from 'skplice embed' on many
               varied images of your domain.
    inputs     the inputs given to this command (at least 2; best with many varied
               ones: what they all share is subtracted with the mean).
    none       no centring: less faithful concepts.
    auto       (default) published when the model has a published mean, else inputs
               when there are {MIN_INPUTS_FOR_MEAN} or more, else none, with a note on stderr.
  The output says which mean was used.
"""


def main(argv=None):
    """Run the ``skplice`` command.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments, without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when a step fails while running (a download,
        a missing optional package, writing a file), 2 for invalid arguments or input
        files (argparse's convention).

    Examples
    --------
    >>> from skplice.cli import main
    >>> main(["--version"])
    skplice ...
    0
    >>> main(["decompose", "--input", "missing.npy", "--output", "weights.npz"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return _exit_status(exit_.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"{PROG} {args.command}"
    with warnings.catch_warnings(), _messages_to_stderr(quiet=getattr(args, "quiet", False)):
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if args.debug:
                raise
            message, status = _describe(exc)
            print(f"{prog}: error: {shorten_words(message)}", file=sys.stderr)
            return status


def build_parser():
    """The argument parser of the ``skplice`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with one sub-parser per command.

    Examples
    --------
    >>> from skplice.cli._commands import build_parser
    >>> args = build_parser().parse_args(["explain", "photo.jpg", "--top-k", "3"])
    >>> args.command, args.images, args.top_k, args.l1
    ('explain', ['photo.jpg'], 3, 0.2)
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=_IntermixedParser
    )
    _add_explain(commands)
    _add_embed(commands)
    _add_decompose(commands)
    return parser


class _IntermixedParser(argparse.ArgumentParser):
    """A command's parser that takes positionals among options: ``explain a.jpg -q b.jpg``.

    argparse stops collecting a positional's values at the first option; its intermixed
    mode (which the top-level parser, having sub-commands, cannot use) collects them all.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:  # called back by parse_known_intermixed_args (Python < 3.13)
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


# ---------------------------------------------------------------------------- explain


def _add_explain(commands):
    sub = commands.add_parser(
        "explain",
        help="print (or plot) the concepts that make up each image",
        description=(
            "Explain each image as a short list of weighted concepts (words).\n\n"
            "Each image is embedded with CLIP, centred (see below) and decomposed into a\n"
            "sparse, non-negative combination of the CLIP text embeddings of a vocabulary\n"
            "(default: the 10,000 most frequent LAION words). It prints how the embeddings\n"
            "were centred, then for each image the number of concepts, how much of the\n"
            "image they explain (the cosine between the centred embedding and the weighted\n"
            "sum of its concepts: 1 = exactly, 0 = not at all), and the heaviest concepts\n"
            "with their weights."
        ),
        epilog=_CENTRING_HELP
        + """
examples:
  skplice explain photo.jpg
  skplice explain photos/*.jpg --top-k 5 --json > concepts.json
  skplice explain photos/*.jpg --clean          # without stop words and symbols
  skplice explain photo.jpg --image-mean embeddings.npy --plot concepts.png
  skplice explain photo.jpg --model ViT-B-16 --pretrained laion2b_s34b_b88k
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    _add_model_options(sub)
    _add_splice_options(sub)
    _add_vocabulary_options(sub)
    out = sub.add_argument_group("output")
    out.add_argument(
        "--top-k",
        type=_count(minimum=0),
        default=10,
        metavar="K",
        help="concepts listed per image, heaviest first; 0 lists all (default: 10)",
    )
    out.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text: a list with one object per image, holding "
        "image, n_concepts, cosine, image_mean (how it was centred, e.g. 'published "
        "mean of ViT-B-32 laion2b_s34b_b79k') and concepts (a list of {concept, "
        "weight}); an image that could not be read has an error instead",
    )
    out.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also save a figure with one row per image (at most "
        f"{MAX_PLOT_IMAGES}): the image beside a bar chart of its top-k concepts; the "
        "format follows the extension (.png, .pdf, .svg, ...)",
    )
    _add_image_options(sub)
    _add_run_options(sub)
    sub.set_defaults(run=_explain)


def _explain(args):
    images = check_image_paths(args.images, on_error=args.on_error)
    if args.plot:
        check_plot_path(args.plot, len(images))
    vocabulary = check_vocabulary(args.vocabulary)
    mean_source = check_mean_source(args.image_mean)
    embedder = _embedder(args, on_error=args.on_error, batch_size=args.batch_size)
    mean_source, mean_model = published_mean_model(mean_source, embedder)
    _load_model(embedder, args, mean_model)
    X, explained, skipped = _embed(embedder, images)
    if not explained:
        raise UsageError(f"none of the {len(images)} images could be read.")
    splice, centring = _fit_splice(X, args, mean_source, vocabulary=vocabulary, encoder=embedder)
    W = splice.transform(X)
    names = splice.get_feature_names_out()
    cosines = _explained_cosines(X, W, splice)
    records = explanation_records(
        explained,
        W,
        names,
        cosines,
        top_k=args.top_k,
        image_mean=centring,
        skipped=skipped,
    )
    if args.json:
        import json

        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        print(format_records(records, image_mean=centring), end="")
    if args.plot:
        write_plot(args.plot, explained, W, names, top_k=args.top_k)
        _info(args, f"wrote {args.plot}")
    return 0


# ------------------------------------------------------------------------------ embed


def _add_embed(commands):
    sub = commands.add_parser(
        "embed",
        help="save the CLIP embeddings of images to a .npy file",
        description=(
            "Embed images with CLIP and save the embeddings as a float32 array of shape\n"
            "(n_images, d), one row per image in argument order (L2-normalised). Use it\n"
            "as input to 'skplice decompose', or as --image-mean for 'skplice explain'\n"
            "(the embeddings of many varied images give a good image mean)."
        ),
        epilog="example:\n  skplice embed photos/*.jpg --output embeddings.npy\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    sub.add_argument(
        "-o", "--output", required=True, metavar="OUT.npy", help="where to save the embeddings"
    )
    _add_model_options(sub)
    _add_image_options(sub, skip_note="; skipped images have no row, and are listed on stderr")
    _add_run_options(sub)
    sub.set_defaults(run=_embed_command)


def _embed_command(args):
    images = check_image_paths(args.images, on_error=args.on_error)
    output = check_output_path(args.output, "--output")
    embedder = _embedder(args, on_error=args.on_error, batch_size=args.batch_size)
    _load_model(embedder, args)
    X, explained, _ = _embed(embedder, images)
    if not explained:
        raise UsageError(f"none of the {len(images)} images could be read.")
    write_npy(output, X)
    _info(args, f"wrote {output}: {X.shape[0]} embeddings of {X.shape[1]} features")
    return 0


# -------------------------------------------------------------------------- decompose


def _add_decompose(commands):
    sub = commands.add_parser(
        "decompose",
        help="decompose saved embeddings into concept weights (.npz)",
        description=(
            "Decompose precomputed embeddings (a .npy array of shape (n, d), read\n"
            "memory-mapped) into sparse concept weights, saved as a scipy sparse .npz of\n"
            "shape (n, n_concepts). The file also holds the concept names (one per\n"
            "column) as an array named concept_names:\n\n"
            "  W = scipy.sparse.load_npz('weights.npz')\n"
            "  names = numpy.load('weights.npz')['concept_names']\n\n"
            "The dictionary is either a vocabulary encoded by the CLIP text tower of\n"
            "--model/--pretrained (the model that made the embeddings), or precomputed\n"
            "concept embeddings (--dictionary, with --names). The output is written whole\n"
            "or not at all. The result equals SpLiCETransformer(...).fit(X).transform(X)\n"
            "with the same settings."
        ),
        epilog=_CENTRING_HELP
        + """
examples:
  skplice decompose --input embeddings.npy --output weights.npz
  skplice decompose --input embeddings.npy --output weights.npz \\
      --dictionary concepts.npy --names concepts.txt --l1 0.25
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    files = sub.add_argument_group("files")
    files.add_argument(
        "-i", "--input", required=True, metavar="X.npy", help="embeddings, shape (n, d)"
    )
    files.add_argument(
        "-o", "--output", required=True, metavar="OUT.npz", help="where to save the weights"
    )
    files.add_argument(
        "--dictionary",
        metavar="C.npy",
        help="precomputed concept embeddings, shape (n_concepts, d), instead of encoding "
        "--vocabulary with the model",
    )
    files.add_argument(
        "--names",
        metavar="NAMES.txt",
        help="with --dictionary: the concept names, one per line in row order "
        "(default: concept_0, concept_1, ...)",
    )
    _add_model_options(sub)
    _add_splice_options(sub)
    sub.add_argument(
        "--batch-size",
        type=_count(),
        default=1024,
        metavar="N",
        help="embeddings solved together; memory grows with N x n_concepts (default: 1024)",
    )
    _add_vocabulary_options(sub)
    _add_run_options(sub)
    sub.set_defaults(run=_decompose)


def _decompose(args):
    output = check_output_path(args.output, "--output")
    X = load_matrix(args.input, "--input", what="embeddings (n_samples, n_features)", mmap=True)
    if output.resolve() == Path(args.input).resolve():
        raise UsageError("--output must not be the --input file.")
    mean_source = check_mean_source(args.image_mean)
    if args.dictionary is not None:
        _refuse_model_options(args)
        published_mean_model(mean_source, None)  # refuses an explicit "published"
        dictionary = load_matrix(
            args.dictionary, "--dictionary", what="concept embeddings (n_concepts, d)"
        )
        if dictionary.shape[1] != X.shape[1]:
            raise UsageError(
                f"--dictionary has {dictionary.shape[1]} features per concept but the "
                f"--input embeddings have {X.shape[1]}: both must come from the same model."
            )
        names = None if args.names is None else load_names(args.names, len(dictionary))
        source = {"dictionary": dictionary, "concept_names": names}
    else:
        if args.names is not None:
            raise UsageError("--names goes with --dictionary; use --vocabulary otherwise.")
        vocabulary = check_vocabulary(args.vocabulary)
        encoder = _embedder(args)
        mean_source, mean_model = published_mean_model(mean_source, encoder)
        _load_model(encoder, args, mean_model)
        source = {"vocabulary": vocabulary, "encoder": encoder}
    progress = _progress(args, X.shape[0] > args.batch_size)
    splice, centring = _fit_splice(
        X, args, mean_source, batch_size=args.batch_size, verbose=progress, **source
    )
    W = splice.transform(X)
    write_weights(output, W, splice.get_feature_names_out())
    _info(
        args,
        f"wrote {output}: weights of {W.shape[0]} embeddings over {W.shape[1]} concepts, "
        f"{W.nnz / max(W.shape[0], 1):.1f} concepts per embedding on average; "
        + ("not centred" if centring == "none" else f"centred by the {centring}"),
    )
    return 0


# ---------------------------------------------------------------------- shared options


def _add_model_options(sub):
    group = sub.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="NAME",
        help=f"open_clip architecture (default: {DEFAULT_MODEL}; with --model-config, the "
        "config's name), or hf-hub:ORG/REPO, or local-dir:FOLDER",
    )
    group.add_argument(
        "--pretrained",
        metavar="WEIGHTS",
        help=f"a pretrained tag of the model (default for {DEFAULT_MODEL}: "
        f"{DEFAULT_PRETRAINED}), the path of a local checkpoint file, or none for random "
        "weights (for testing only: random weights give meaningless concepts)",
    )
    group.add_argument(
        "--model-config",
        metavar="CONFIG.json",
        help="register an open_clip architecture from a JSON config file; its file name "
        "without .json is the model name",
    )
    group.add_argument(
        "--device",
        metavar="DEVICE",
        help="torch device: cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)",
    )


def _add_splice_options(sub):
    group = sub.add_argument_group("decomposition")
    group.add_argument(
        "--l1",
        type=_non_negative_float,
        default=0.2,
        metavar="L1",
        help="sparsity penalty: larger gives fewer concepts; 0.2 gives about 10-30 "
        "concepts per image on CLIP ViT-B-32 (default: 0.2)",
    )
    group.add_argument(
        "--image-mean",
        default="auto",
        metavar="SOURCE",
        help="how to centre the embeddings: auto, published, inputs, none, or a FILE "
        "(see 'centring' below; default: auto, the published mean of the model when "
        "there is one)",
    )


def _add_vocabulary_options(sub):
    group = sub.add_argument_group("vocabulary")
    group.add_argument(
        "--vocabulary",
        default="laion",
        metavar="NAME_OR_FILE",
        help="a named vocabulary (laion, laion_bigrams, mscoco; downloaded on first use) "
        "or a text file with one concept per line (default: laion)",
    )
    group.add_argument(
        "--vocabulary-size",
        type=_count(),
        default=10000,
        metavar="N",
        help="concepts taken from a named vocabulary, the most frequent first; files are "
        "used whole (default: 10000)",
    )
    group.add_argument(
        "--clean",
        action="store_true",
        help="drop concepts that explain little: English stop words (have, the, ...), "
        "entries without a letter (<, 2019) and single characters, as "
        "load_vocabulary(clean=True) does; --vocabulary-size then counts the concepts kept",
    )


def _add_image_options(sub, skip_note=""):
    group = sub.add_argument_group("images")
    group.add_argument(
        "--batch-size",
        type=_count(),
        default=64,
        metavar="N",
        help="images per forward pass of the model (default: 64)",
    )
    group.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="what to do with an image that cannot be read: stop with an error (raise, "
        f"the default) or leave it out with a warning (skip){skip_note}",
    )


def _add_run_options(sub):
    group = sub.add_argument_group("messages")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="always show progress bars and what was written (default: progress bars "
        "only when stderr is a terminal)",
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or notes on stderr"
    )
    group.add_argument("--debug", action="store_true", help="show the full traceback of an error")


# -------------------------------------------------------------------------- the steps


def _embedder(args, *, on_error="raise", batch_size=64):
    """A CLIPEmbedder from the model options, checked without loading any weights."""
    from skplice.embedding._embedders import CLIPEmbedder

    if args.model_config is None:
        model = args.model or DEFAULT_MODEL
        pretrained = resolve_pretrained(model, args.pretrained)
    else:
        config_name = register_model_config(args.model_config)
        model = args.model or config_name
        pretrained = resolve_pretrained(model, args.pretrained)
    embedder = CLIPEmbedder(
        model,
        pretrained,
        device=args.device,
        batch_size=batch_size,
        on_error=on_error,
        verbose=_progress(args, True),
    )
    try:
        embedder._spec()
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    return embedder


def _load_model(embedder, args, mean_model=None):
    """Load the model now, so that a failed download is reported with the CLI's fixes.

    ``mean_model`` is the model whose published mean will be needed, if any.
    """
    from skplice.utils._device import resolve_device

    try:
        resolve_device(embedder.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from exc
    try:
        embedder._bundle()
    except OSError as exc:
        if embedder._spec().source not in ("tag", "hf-hub"):
            raise  # local weights: nothing was downloaded
        weights = (
            f"{embedder.model}, {embedder.pretrained}" if embedder.pretrained else embedder.model
        )
        from skplice.embedding._hub import unreachable_reason

        reason = unreachable_reason()  # the answer of the probe made before the download
        lines = [
            f"could not download the CLIP model weights ({weights})"
            + (f": {reason}." if reason else "."),
            "To fix it, run the command again with internet access (the weights are then "
            "cached), or give a local checkpoint file of the same architecture:",
            f"  skplice {args.command} ... --model {embedder.model} "
            "--pretrained /path/to/open_clip_pytorch_model.bin",
        ]
        for hint in (
            vocabulary_hint(getattr(args, "vocabulary", None)),
            image_mean_hint(mean_model),
        ):
            if hint:
                lines.append(hint)
        lines.append(f"Details: {exc}")
        raise CommandError("\n".join(lines)) from exc


def _embed(embedder, images):
    """Embeddings of the images that could be read, their paths, and the skipped ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedImagesWarning)
        X, kept = embedder.embed(images)
    skipped = []
    for warning in caught:
        if isinstance(warning.message, SkippedImagesWarning):
            skipped = [(i, images[i], reason) for i, _, reason in warning.message.skipped]
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    for _, path, reason in skipped:
        warnings.warn(f"skipped {path}: {reason}", UserWarning, stacklevel=2)
    return X, [images[i] for i in kept], skipped


def _fit_splice(X, args, mean_source, *, batch_size=1024, verbose=False, **source):
    """A SpLiCETransformer fitted on X, centred as --image-mean says; and how it was."""
    from skplice.decomposition._splice import SpLiCETransformer
    from skplice.exceptions import ImageMeanDownloadError, VocabularyDownloadError

    mode, note = centring_mode(mean_source, X.shape[0])
    if note and not args.quiet:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    image_mean = None  # learned from X ("inputs"), or unused ("none")
    if mode == "published":
        image_mean = "published"
    elif isinstance(mode, Path):
        # Read before the (possibly long) fit, so that a bad file fails fast.
        image_mean = read_image_mean_file(mode, X.shape[1])
    try:
        if getattr(args, "clean", False) and "encoder" in source:
            source["vocabulary"] = _cleaned(source["vocabulary"], args.vocabulary_size)
        splice = SpLiCETransformer(
            l1=args.l1,
            vocabulary_size=args.vocabulary_size,
            image_mean=image_mean,
            center=mode != "none",
            batch_size=batch_size,
            device=args.device,
            verbose=verbose,
            **source,
        )
        splice.fit(X)
    except VocabularyDownloadError as exc:
        raise CommandError(
            f"{exc}\nOr pass --vocabulary words.txt, a file with one concept per line."
        ) from exc
    except ImageMeanDownloadError as exc:
        raise CommandError(f"{exc}\nOr pass --image-mean inputs, none or FILE.") from exc
    return splice, mean_label(mode, n_inputs=X.shape[0], model=splice.clip_model_)


def _explained_cosines(X, W, splice):
    """How much of each embedding its concepts explain: a cosine, 0 without concepts.

    With centring, the cosine between the centred embedding and the weighted sum of its
    concepts, the two sides of SpLiCE's approximation. The cosine with the whole
    reconstruction would add the mean back to both sides and read close to 1 even for an
    image that no concept explains.
    """
    from skplice.utils._rows import row_cosines, unit_rows

    z = unit_rows(np.asarray(X, dtype=np.float64))
    if splice.center:
        z = z - splice.image_mean_
    return row_cosines(z, np.asarray(W @ splice.components_))


# ---------------------------------------------------------------------------- helpers


def _cleaned(vocabulary, size):
    """The --clean concepts: a named vocabulary's ``size`` most frequent, a file whole."""
    from skplice.concepts._vocabulary import NAMED_VOCABULARIES, load_vocabulary

    named = vocabulary in NAMED_VOCABULARIES
    try:
        return load_vocabulary(vocabulary, size=size if named else None, clean=True)
    except ValueError as exc:  # e.g. fewer clean concepts than --vocabulary-size
        raise UsageError(f"--clean: {exc}") from exc


def _refuse_model_options(args):
    given = [
        option
        for option, value in (
            ("--model", args.model),
            ("--pretrained", args.pretrained),
            ("--model-config", args.model_config),
        )
        if value is not None
    ]
    if given or args.vocabulary != "laion" or args.clean:
        given += ["--vocabulary"] if args.vocabulary != "laion" else []
        given += ["--clean"] if args.clean else []
        raise UsageError(
            f"--dictionary replaces the encoded vocabulary; drop {', '.join(given)} (name "
            "the dictionary's concepts with --names)."
        )


def _progress(args, long_run):
    """Progress bars: with --verbose, or on a terminal for a long run, never with --quiet."""
    if args.quiet:
        return False
    return bool(args.verbose or (long_run and sys.stderr.isatty()))


def _info(args, message):
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr)


@contextmanager
def _messages_to_stderr(*, quiet=False):
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
    handler.addFilter(_not_handled_elsewhere)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _not_handled_elsewhere(record):
    """False for records that a handler of their own logger (or a parent) already shows."""
    logger = logging.getLogger(record.name)
    while logger.parent is not None:  # stop below the root, where our handler is
        if logger.handlers:
            return False
        if not logger.propagate:
            break
        logger = logger.parent
    return True


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = shorten_words(str(message))
    print(f"{PROG}: warning: {text}", file=sys.stderr if file is None else file)


def _describe(exc):
    """The message and exit status of an exception that ended a command."""
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, ImageLoadError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, ImportError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, (ValueError, TypeError, LookupError)):
        return str(exc), EXIT_USAGE
    if isinstance(exc, OSError):
        return str(exc), EXIT_FAILURE
    return (
        f"{type(exc).__name__}: {exc} (an unexpected error: rerun with --debug for the "
        "traceback, and please report it)",
        EXIT_FAILURE,
    )


def _exit_status(code):
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_FAILURE


def _count(minimum=1):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
