"""Concept dictionary encoding: full context (open_clip's encode_text) vs skplice's short context.

Encodes the default dictionary, the 10,000 most frequent LAION words, with the CLIP
ViT-B-32 text tower (random weights, ``pretrained=None``: the same architecture and the
same cost as the LAION-2B weights) on the CPU, two ways:

- **full context** (what skplice did before): ``model.encode_text(tokenizer(words))``,
  every word padded to 77 tokens. It takes a quarter of an hour on 2 cores, so by default
  it runs on the first ``--full-subset`` words and its time is extrapolated linearly (it
  is linear: every word costs the same 77 positions); ``--full-subset 10000`` times it all.
- **short context** (now): ``CLIPEmbedder.encode_text``, each word at its own token
  length (3 for most words), all 10,000 words.

Both start from a loaded model and include tokenization. The difference between the two
is checked on the words encoded both ways. Then the README's first command,
``skplice explain examples/images/astronaut.jpg``, runs in a fresh process with the
model weights and the vocabulary already on disk (a random ViT-B-32 checkpoint in a
temporary file stands in for the downloaded weights, given with ``--pretrained``, and
the vocabulary is copied into a temporary ``SKPLICE_HOME``): once with the dictionary
still to encode (the first explanation) and once with it cached. Run from the
repository root::

    python -m benchmarks.text_encoding                    # about 2 minutes on 2 cores
    python -m benchmarks.text_encoding --threads 2 --full-subset 10000   # all at full context
    python -m benchmarks.text_encoding --skip-cli --n-words 2000
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks import _data
from benchmarks._measure import threads
from benchmarks._report import RESULTS_DIR, save, to_text
from skplice import CLIPEmbedder
from skplice.embedding import _clip_backend

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "examples" / "images" / "astronaut.jpg"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture")
    parser.add_argument("--n-words", type=int, default=10000, help="LAION words to encode")
    parser.add_argument(
        "--full-subset",
        type=int,
        default=500,
        help="words timed at full context (the rest is extrapolated); default 500",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="CLIPEmbedder's default")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument(
        "--skip-cli",
        action="store_true",
        help="do not time `skplice explain` (it needs one of open_clip's own architectures)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.full_subset = min(args.full_subset, args.n_words)
    return args


def timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its wall time and the CPU time of this process and its children.

    CPU time is the steadier measure on a shared machine: other processes lengthen the
    wall time, not the work done.
    """
    before = _cpu_seconds()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start, _cpu_seconds() - before


def _cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def encode_full_context(embedder, words, batch_size):
    """open_clip's own encode_text on every word padded to the context (before)."""
    bundle = embedder._bundle()
    tokenizer = _clip_backend.get_tokenizer(embedder._spec())
    rows = []
    with torch.inference_mode():
        for start in range(0, len(words), batch_size):
            tokens = tokenizer(words[start : start + batch_size])
            rows.append(torch.nn.functional.normalize(bundle.model.encode_text(tokens), dim=-1))
    return torch.cat(rows).numpy()


def time_cli(model, checkpoint, home, n_threads):
    """Wall time of `skplice explain` on the example photo in a fresh process."""
    env = {**os.environ, "SKPLICE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if n_threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(n_threads)
    command = [sys.executable, "-m", "skplice", "explain", str(IMAGE)]
    command += ["--model", model, "--pretrained", str(checkpoint), "--device", "cpu"]
    result, wall, cpu = timed(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return wall, cpu


def main(argv=None):
    """Run the benchmark; return the table."""
    args = parse_args(argv)
    words = _data.laion_words(args.n_words)
    embedder = CLIPEmbedder(args.model, None, device="cpu", batch_size=args.batch_size)
    rows = []
    with threads(args.threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No pretrained weights loaded")
        n_threads = torch.get_num_threads()
        embedder._bundle()  # load the model first: neither timing includes it
        embedder.encode_text(words[:8])  # warm-up

        full, full_wall, full_cpu = timed(
            encode_full_context, embedder, words[: args.full_subset], args.batch_size
        )
        short, short_wall, short_cpu = timed(embedder.encode_text, words)

    scale = args.n_words / args.full_subset
    extrapolated = full_wall * scale
    difference = np.abs(short[: args.full_subset] - full).max()
    cosine = np.sum(short[: args.full_subset] * full, axis=1).min()
    measured = f"measured on {args.full_subset:,} words"
    rows.append(
        {
            "encoding": "full context (open_clip encode_text, before)",
            "words": args.n_words,
            "wall (s)": extrapolated,
            "CPU (s)": full_cpu * scale,
            "words/s": args.n_words / extrapolated,
            "speed-up": 1.0,
            "note": measured + (", extrapolated" if args.full_subset < args.n_words else ""),
        }
    )
    rows.append(
        {
            "encoding": "short context (CLIPEmbedder.encode_text, after)",
            "words": args.n_words,
            "wall (s)": short_wall,
            "CPU (s)": short_cpu,
            "words/s": args.n_words / short_wall,
            "speed-up": extrapolated / short_wall,
            "note": f"max |diff| {difference:.1e}, min cosine {cosine:.7f} ({measured})",
        }
    )
    heading = (
        f"## Concept dictionary encoding: {args.n_words:,} LAION words, {args.model} "
        f"(random weights), CPU, {n_threads} threads, batch_size={args.batch_size}"
    )
    print(f"\n{heading}\n\n{to_text(pd.DataFrame(rows))}\n", flush=True)
    if not args.skip_cli:
        rows += cli_rows(embedder, args)
        print(f"{to_text(pd.DataFrame(rows))}\n")
    table = pd.DataFrame(rows)
    save(table, f"text-encoding-{args.model}-n{args.n_words}", heading, args.results_dir)
    return table


def cli_rows(embedder, args):
    """Time `skplice explain` twice: the dictionary still to encode, then cached."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = tmp / f"{args.model}-random.pt"
        torch.save(embedder._bundle().model.state_dict(), checkpoint)
        home = tmp / "skplice_home"
        (home / "vocabularies").mkdir(parents=True)
        shutil.copy(_data.VOCAB_DIR / "laion.txt", home / "vocabularies" / "laion.txt")
        rows = []
        for label in ("first run: dictionary encoded", "second run: dictionary cached"):
            wall, cpu = time_cli(args.model, checkpoint, home, args.threads)
            rows.append(
                {
                    "encoding": f"`skplice explain astronaut.jpg`, {label}",
                    "words": 10000,
                    "wall (s)": wall,
                    "CPU (s)": cpu,
                    "note": "fresh process; model and vocabulary on disk",
                }
            )
        return rows


if __name__ == "__main__":
    main()
