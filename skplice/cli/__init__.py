"""The ``skplice`` command: explain images from a shell, on the public API only."""

from skplice.cli._commands import build_parser, main

__all__ = ["build_parser", "main"]
