"""The ``skplice`` command: explain images in concepts, embed them, decompose embeddings.

Run ``skplice --help`` (or ``python -m skplice --help``) for the commands and
``skplice COMMAND --help`` for their options. Exit status: 0 on success, 1 when
something fails while running (a download, a missing optional package, writing a file),
2 when the arguments or input files are invalid. Errors are one message on stderr;
``--debug`` shows the traceback instead.

The command is a client of the library's public API only (a test checks it).
"""

import sys
import warnings
from pathlib import Path

from skplice.cli._errors import EXIT_USAGE, CommandError, UsageError, describe, exit_status
from skplice.cli._inputs import (
    centring_mode,
    check_image_paths,
    check_mean_source,
    check_output_path,
    check_vocabulary,
    estimator_defaults,
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
from skplice.cli._options import build_parser
from skplice.cli._outputs import (
    PROG,
    check_plot_path,
    explanation_records,
    format_records,
    info,
    messages_to_stderr,
    progress,
    show_warning,
    write_npy,
    write_plot,
    write_weights,
)
from skplice.exceptions import SkippedImagesWarning
from skplice.utils import shorten_words

__all__ = ["main"]


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
        return exit_status(exit_.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"{PROG} {args.command}"
    with warnings.catch_warnings(), messages_to_stderr(quiet=getattr(args, "quiet", False)):
        warnings.showwarning = show_warning
        try:
            return COMMANDS[args.command](args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if args.debug:
                raise
            message, status = describe(exc)
            print(f"{prog}: error: {shorten_words(message)}", file=sys.stderr)
            return status


# ---------------------------------------------------------------------------- commands


def explain(args):
    """``skplice explain``: print (or plot) the concepts of each image."""
    images = check_image_paths(args.images, on_error=args.on_error)
    if args.plot:
        check_plot_path(args.plot, len(images))
    vocabulary = check_vocabulary(_given(args.vocabulary, "SpLiCETransformer", "vocabulary"))
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
    # How much of each image its concepts explain (see SpLiCETransformer.score_samples).
    cosines = splice.score_samples(X, weights=W, centred=True)
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
        info(args, f"wrote {args.plot}")
    return 0


def embed(args):
    """``skplice embed``: save the CLIP embeddings of images to a .npy file."""
    images = check_image_paths(args.images, on_error=args.on_error)
    output = check_output_path(args.output, "--output")
    embedder = _embedder(args, on_error=args.on_error, batch_size=args.batch_size)
    _load_model(embedder, args)
    X, explained, _ = _embed(embedder, images)
    if not explained:
        raise UsageError(f"none of the {len(images)} images could be read.")
    write_npy(output, X)
    info(args, f"wrote {output}: {X.shape[0]} embeddings of {X.shape[1]} features")
    return 0


def decompose(args):
    """``skplice decompose``: decompose saved embeddings into concept weights (.npz)."""
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
        vocabulary = check_vocabulary(_given(args.vocabulary, "SpLiCETransformer", "vocabulary"))
        encoder = _embedder(args)
        mean_source, mean_model = published_mean_model(mean_source, encoder)
        _load_model(encoder, args, mean_model)
        source = {"vocabulary": vocabulary, "encoder": encoder}
    batch_size = _given(args.batch_size, "SpLiCETransformer", "batch_size")
    verbose = progress(args, X.shape[0] > batch_size)
    splice, centring = _fit_splice(
        X, args, mean_source, batch_size=batch_size, verbose=verbose, **source
    )
    W = splice.transform(X)
    write_weights(output, W, splice.get_feature_names_out())
    info(
        args,
        f"wrote {output}: weights of {W.shape[0]} embeddings over {W.shape[1]} concepts, "
        f"{W.nnz / max(W.shape[0], 1):.1f} concepts per embedding on average; "
        + ("not centred" if centring == "none" else f"centred by the {centring}"),
    )
    return 0


COMMANDS = {"explain": explain, "embed": embed, "decompose": decompose}


# --------------------------------------------------------------------------- the steps


def _given(value, estimator, parameter):
    """An option's value, or when it was left out, the estimator's default."""
    return estimator_defaults(estimator)[parameter] if value is None else value


def _embedder(args, *, on_error="raise", batch_size=None):
    """A CLIPEmbedder from the model options, checked without loading any weights."""
    from skplice import CLIPEmbedder

    if args.model_config is None:
        model = _given(args.model, "CLIPEmbedder", "model")
    else:
        config_name = register_model_config(args.model_config)
        model = args.model or config_name
    pretrained = resolve_pretrained(model, args.pretrained)
    options = {} if batch_size is None else {"batch_size": batch_size}
    embedder = CLIPEmbedder(
        model,
        pretrained,
        device=args.device,
        on_error=on_error,
        verbose=progress(args, True),
        **options,
    )
    try:
        embedder.model_label()  # checks the model and weights, loads nothing
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    return embedder


def _load_model(embedder, args, mean_model=None):
    """Load the model now, so that a failed download is reported with the CLI's fixes.

    ``mean_model`` is the embedder whose model's published mean will be needed, if any.
    """
    from skplice.exceptions import ModelDownloadError

    try:
        embedder.load_model()
    except ValueError as exc:  # the model was checked already: the device is wrong
        raise UsageError(f"--device: {exc}") from exc
    except ModelDownloadError as exc:
        weights = (
            f"{embedder.model}, {embedder.pretrained}" if embedder.pretrained else embedder.model
        )
        reason = exc.unreachable  # the answer of the probe made before the download
        lines = [
            f"could not download the CLIP model weights ({weights})"
            + (f": {reason}." if reason else "."),
            "To fix it, run the command again with internet access (the weights are then "
            "cached), or give a local checkpoint file of the same architecture:",
            f"  skplice {args.command} ... --model {embedder.model} "
            "--pretrained /path/to/open_clip_pytorch_model.bin",
        ]
        for hint in (
            vocabulary_hint(
                _given(getattr(args, "vocabulary", None), "SpLiCETransformer", "vocabulary")
            ),
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


def _fit_splice(X, args, mean_source, *, batch_size=None, verbose=False, **source):
    """A SpLiCETransformer fitted on X, centred as --image-mean says; and how it was."""
    from skplice import SpLiCETransformer
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
    # Options left out take the estimator's defaults.
    given = {"l1": args.l1, "vocabulary_size": args.vocabulary_size, "batch_size": batch_size}
    options = {name: value for name, value in given.items() if value is not None}
    try:
        if getattr(args, "clean", False) and "encoder" in source:
            size = _given(args.vocabulary_size, "SpLiCETransformer", "vocabulary_size")
            source["vocabulary"] = _cleaned(source["vocabulary"], size)
        splice = SpLiCETransformer(
            image_mean=image_mean,
            center=mode != "none",
            device=args.device,
            verbose=verbose,
            **options,
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


def _cleaned(vocabulary, size):
    """The --clean concepts: a named vocabulary's ``size`` most frequent, a file whole."""
    from skplice.concepts import list_vocabularies, load_vocabulary

    named = vocabulary in list_vocabularies()
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
    vocabulary = args.vocabulary not in (
        None,
        estimator_defaults("SpLiCETransformer")["vocabulary"],
    )
    if given or vocabulary or args.clean:
        given += ["--vocabulary"] if vocabulary else []
        given += ["--clean"] if args.clean else []
        raise UsageError(
            f"--dictionary replaces the encoded vocabulary; drop {', '.join(given)} (name "
            "the dictionary's concepts with --names)."
        )
