"""Embeddings that remember which CLIP model made them.

:class:`~skplice.CLIPEmbedder` returns a :class:`ClipEmbeddings` array (or, with pandas
output, a DataFrame whose ``attrs["clip_model"]`` holds the same), so that a
:class:`~skplice.SpLiCETransformer` later in a pipeline encodes its concepts with the
model that made the images' embeddings, and refuses embeddings of another model.
"""

import os
from typing import NamedTuple

import numpy as np

#: Key of the model identity in a pandas DataFrame's ``attrs``.
ATTRS_KEY = "clip_model"


class ClipModel(NamedTuple):
    """The open_clip model that made some embeddings: enough to load it again.

    ``model`` and ``pretrained`` are in the canonical form of
    ``skplice.embedding._clip_backend.resolve_spec``: an architecture name (or ``hf-hub:...``,
    ``local-dir:<absolute folder>``), and a pretrained tag, an absolute checkpoint
    path, or None (random weights, or a hub / local-dir model).
    """

    model: str
    pretrained: str | None
    precision: str

    def label(self):
        """Short readable name: ``"ViT-B-32 laion2b_s34b_b79k"``."""
        if self.pretrained is not None:
            return f"{self.model} {self.pretrained}"
        if self.model.startswith(("hf-hub:", "local-dir:")):
            return self.model
        return f"{self.model} (random weights)"

    def differs_from(self, other):
        """Whether ``other`` surely names another model or other weights (precision aside).

        Different architectures, pretrained tags, random weights or Hub repositories
        differ. A checkpoint file (of the same architecture) or a local folder may
        hold any weights, the same as a tag's for instance, so they differ from
        nothing but another architecture.
        """
        kinds = {self._kind(), other._kind()}
        if kinds <= {"tag", "random", "checkpoint"}:  # named architectures
            if self.model != other.model:
                return True
            return "checkpoint" not in kinds and self.pretrained != other.pretrained
        if kinds == {"hf-hub"}:
            return self.model != other.model
        return False

    def _kind(self):
        if self.model.startswith("local-dir:"):
            return "local-dir"
        if self.model.startswith("hf-hub:"):
            return "hf-hub"
        if self.pretrained is None:
            return "random"
        return "checkpoint" if os.path.isabs(self.pretrained) else "tag"


class ClipEmbeddings(np.ndarray):
    """A numpy array of CLIP embeddings whose ``clip_model`` names the model that made them.

    Views, slices, row selections, copies and pickles keep ``clip_model``; the results
    of arithmetic (any ufunc: ``X * 2``, ``X.mean(axis=0)``, ``X @ W``) and of
    ``np.asarray`` are plain arrays, since they are no longer that model's embeddings.
    """

    def __array_finalize__(self, obj):
        self.clip_model = getattr(obj, "clip_model", None)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        inputs = tuple(_plain(x) for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(_plain(x) for x in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is None or method == "at":
            return result
        # Written in place: return the caller's own arrays, which keep their identity.
        return out[0] if len(out) == 1 else out

    def __reduce__(self):
        reconstruct, arguments, state = super().__reduce__()
        return reconstruct, arguments, (state, self.clip_model)

    def __setstate__(self, state):
        array_state, self.clip_model = state
        super().__setstate__(array_state)


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, ClipEmbeddings) else x


def tag(array, clip_model):
    """``array`` (a float ndarray) as :class:`ClipEmbeddings` of ``clip_model``, no copy."""
    tagged = array.view(ClipEmbeddings)
    tagged.clip_model = clip_model
    return tagged


def clip_model_of(X):
    """The :class:`ClipModel` that ``X`` says made it, or None.

    Reads a :class:`ClipEmbeddings` array's ``clip_model`` and a pandas DataFrame's
    ``attrs["clip_model"]`` (which a file format may have turned into a list).
    """
    if isinstance(X, np.ndarray):
        value = getattr(X, "clip_model", None)
    else:
        attrs = getattr(X, "attrs", None)  # pandas objects
        value = attrs.get(ATTRS_KEY) if isinstance(attrs, dict) else None
    if isinstance(value, ClipModel):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 3:
        model, pretrained, precision = value
        if isinstance(model, str) and isinstance(precision, str):
            if pretrained is None or isinstance(pretrained, str):
                return ClipModel(model, pretrained, precision)
    return None


def clip_model_of_encoder(encoder):
    """The :class:`ClipModel` of a :class:`~skplice.CLIPEmbedder`; None for other encoders."""
    from skplice.embedding._embedders import CLIPEmbedder

    if not isinstance(encoder, CLIPEmbedder):
        return None
    return encoder._clip_model()


def text_encoder_for(encoder, X_model, *, device=None, what="concepts"):
    """The text encoder to use with embeddings of ``X_model``, and its CLIP model.

    ``encoder=None`` gives a :class:`~skplice.CLIPEmbedder` of the model that made ``X``
    (on ``device``), or of the default model when ``X`` does not say; a CLIPEmbedder of
    another model than ``X``'s is refused, since texts and images must share one space;
    any other encoder is used as given. Returns ``(encoder, ClipModel or None)``.
    """
    from skplice.embedding._embedders import CLIPEmbedder

    if encoder is None:
        if X_model is None:
            encoder = CLIPEmbedder(device=device)
        else:  # the model that made X, so that images and texts share a space
            encoder = CLIPEmbedder(
                X_model.model, X_model.pretrained, precision=X_model.precision, device=device
            )
        return encoder, encoder._clip_model()
    own = clip_model_of_encoder(encoder)
    if own is not None and X_model is not None and own.differs_from(X_model):
        raise ValueError(
            f"X was embedded by {X_model.label()} but encoder is a CLIPEmbedder of "
            f"{own.label()}: the {what} must be encoded by the model that embedded the "
            "images, or every result is wrong. Use encoder=None (the model of X), or embed "
            "the images with the encoder's model."
        )
    return encoder, own or X_model


def check_same_model(estimator, X):
    """Refuse ``X`` when it says another CLIP model made it than the one ``estimator`` fit.

    The fitted model is the estimator's ``_clip_model`` attribute (None: not known).
    """
    X_model = clip_model_of(X)
    fitted = getattr(estimator, "_clip_model", None)
    if X_model is not None and fitted is not None and X_model.differs_from(fitted):
        raise ValueError(
            f"X was embedded by {X_model.label()} but this {type(estimator).__name__} was "
            f"fitted for {fitted.label()}, whose texts and statistics belong to that model. "
            "Embed X with the same model, or fit one for this model."
        )
