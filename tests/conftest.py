"""Shared fixtures for the skplice test suite."""

import os

# Nothing in the test suite may reach a model hub: real users have internet, CI does not.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
