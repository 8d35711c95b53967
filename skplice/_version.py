"""skplice's version, in a module of its own so that anything can import it early."""

__version__ = "0.1.0.dev0"
