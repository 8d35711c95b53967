"""The ``skplice`` command: explain images from a shell, on the public API only.

Its modules: ``_options`` (the argparse parsers), ``_inputs`` (checked arguments and
input files), ``_commands`` (the commands and their steps), ``_outputs`` (what it
writes, and its messages on stderr), ``_errors`` (exit statuses and errors).
"""

from skplice.cli._commands import main
from skplice.cli._options import build_parser

__all__ = ["build_parser", "main"]
