"""Reaching the Hugging Face Hub: fail in seconds when it cannot be reached, not in minutes.

huggingface_hub retries a download that cannot connect, with growing pauses and a warning
each time, for every file it tries: an offline first use of a pretrained model took about
a minute and a half before its clear error. One HEAD request with a short timeout tells
first; when the Hub cannot be reached, the download runs in huggingface_hub's offline mode,
which still finds files in the local cache. The mode is switched for the duration of the
load only (huggingface_hub reads ``huggingface_hub.constants.HF_HUB_OFFLINE`` at each
request), never through the process-wide ``HF_HUB_OFFLINE`` environment variable; other
threads that reach the Hub during that load see offline mode too.
"""

import importlib
import os
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

PROBE_TIMEOUT = 5  # seconds
_REMEMBER = 60  # seconds a probe's answer is reused
_PROBES = {}  # endpoint -> (time.monotonic() of the probe, reason or None)
_LOCK = threading.Lock()
_OFFLINE = {"depth": 0, "saved": None}


def _constants():
    return importlib.import_module("huggingface_hub.constants")


def endpoint():
    """The Hub address huggingface_hub uses (``HF_ENDPOINT``, else huggingface.co)."""
    try:
        return _constants().ENDPOINT
    except ImportError:
        return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def offline_mode():
    """True when huggingface_hub is in offline mode (``HF_HUB_OFFLINE``) by its own settings."""
    with _LOCK:
        if _OFFLINE["depth"]:  # switched by offline_if_unreachable: what it was before
            return bool(_OFFLINE["saved"])
    try:
        return bool(_constants().HF_HUB_OFFLINE)
    except ImportError:
        return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def unreachable_reason():
    """Why the Hub cannot be reached, as a phrase; None when it answers or offline mode is on.

    The answer of a probe is reused for a minute, so a run that loads several models
    probes once. Setting ``HF_HUB_OFFLINE`` (to anything, "0" included) skips the probe:
    the user has decided.
    """
    if offline_mode() or os.environ.get("HF_HUB_OFFLINE", "") != "":
        return None
    address = endpoint()
    with _LOCK:
        known = _PROBES.get(address)
    if known is not None and time.monotonic() - known[0] < _REMEMBER:
        return known[1]
    try:
        request = urllib.request.Request(address, method="HEAD")
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT):
            pass
        reason = None
    except urllib.error.HTTPError:
        reason = None  # the server answered
    except (OSError, ValueError) as exc:
        cause = getattr(exc, "reason", None) or exc
        reason = f"{address} could not be reached ({cause}), so only the local cache was searched"
    with _LOCK:
        _PROBES[address] = (time.monotonic(), reason)
    return reason


@contextmanager
def offline_if_unreachable():
    """Run the block in huggingface_hub's offline mode when the Hub cannot be reached.

    Yields why it cannot be reached, or None (then nothing is changed). Nested and
    concurrent blocks share one switch, restored when the last one ends.
    """
    reason = unreachable_reason()
    if reason is None:
        yield None
        return
    constants = _constants()
    with _LOCK:
        if _OFFLINE["depth"] == 0:
            _OFFLINE["saved"] = constants.HF_HUB_OFFLINE
            constants.HF_HUB_OFFLINE = True
        _OFFLINE["depth"] += 1
    try:
        yield reason
    finally:
        with _LOCK:
            _OFFLINE["depth"] -= 1
            if _OFFLINE["depth"] == 0:
                constants.HF_HUB_OFFLINE = _OFFLINE["saved"]
