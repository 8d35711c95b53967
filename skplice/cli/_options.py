"""The ``skplice`` command's arguments: one argparse parser per command, with its help.

Options that an estimator has a parameter for default to None here: the command then
leaves the parameter out, so that the estimator's own default applies. Their help
states those defaults, and a test checks that it states them right.
"""

import argparse

import numpy as np

from skplice import __version__
from skplice.cli._inputs import MIN_INPUTS_FOR_MEAN
from skplice.cli._outputs import MAX_PLOT_IMAGES, PROG

# The estimators' defaults as the help states them (importing the estimators would load
# torch and scikit-learn for --help); tests/cli/test_cli.py checks them against the estimators.
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
DEFAULT_L1 = 0.2
DEFAULT_VOCABULARY = "laion"
DEFAULT_VOCABULARY_SIZE = 10000
DEFAULT_IMAGE_BATCH_SIZE = 64
DEFAULT_SOLVER_BATCH_SIZE = 1024

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


def build_parser():
    """The argument parser of the ``skplice`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with one sub-parser per command.

    Examples
    --------
    >>> from skplice.cli import build_parser
    >>> args = build_parser().parse_args(["explain", "photo.jpg", "--top-k", "3"])
    >>> args.command, args.images, args.top_k, args.l1  # None: the estimator's default
    ('explain', ['photo.jpg'], 3, None)
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
    add_explain(commands)
    add_embed(commands)
    add_decompose(commands)
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


def add_explain(commands):
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


def add_embed(commands):
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


def add_decompose(commands):
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
        metavar="N",
        help="embeddings solved together; memory grows with N x n_concepts (default: "
        f"{DEFAULT_SOLVER_BATCH_SIZE})",
    )
    _add_vocabulary_options(sub)
    _add_run_options(sub)


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
        metavar="L1",
        help="sparsity penalty: larger gives fewer concepts; 0.2 gives about 10-30 "
        f"concepts per image on CLIP ViT-B-32 (default: {DEFAULT_L1})",
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
        metavar="NAME_OR_FILE",
        help="a named vocabulary (laion, laion_bigrams, mscoco; downloaded on first use) "
        f"or a text file with one concept per line (default: {DEFAULT_VOCABULARY})",
    )
    group.add_argument(
        "--vocabulary-size",
        type=_count(),
        metavar="N",
        help="concepts taken from a named vocabulary, the most frequent first; files are "
        f"used whole (default: {DEFAULT_VOCABULARY_SIZE})",
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
        metavar="N",
        help=f"images per forward pass of the model (default: {DEFAULT_IMAGE_BATCH_SIZE})",
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
