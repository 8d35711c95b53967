"""Turn the image inputs skplice accepts into a list, and each item into an RGB PIL image.

Accepted items: file paths (``str`` or path-like), encoded bytes, PIL images, and numpy
arrays (HxW or HxWxC with C in {1, 3, 4}; uint8, uint16, or floats in [0, 1]).

Conversions to RGB (one rule per source mode):

- EXIF orientation is applied (:func:`PIL.ImageOps.exif_transpose`).
- Transparency (RGBA, LA, PA, palette images with a transparent colour, 4-channel
  arrays) is composited onto a white background, the way image viewers show it;
  dropping the alpha channel instead would expose whatever colour the encoder left
  under fully transparent pixels (often black).
- 16-bit images are scaled to 8 bits (``value / 257``); PIL's own conversion clips
  them instead.
- Grayscale, 1-bit, palette, CMYK and YCbCr images are converted by PIL.
- Animated images (GIF, APNG, ...) contribute their first frame.

Encoded inputs (paths, bytes) larger than ``PIL.Image.MAX_IMAGE_PIXELS`` are refused
before they are decoded (PIL only warns up to twice that limit; skplice refuses).
"""

import io
import os

import numpy as np

from skplice.exceptions import ImageLoadError
from skplice.utils._deps import import_optional
from skplice.utils._files import non_regular_kind
from skplice.utils._text import shorten, shorten_words

_ENCODED = (bytes, bytearray, memoryview)


def _pil():
    image = import_optional("PIL.Image")
    ops = import_optional("PIL.ImageOps")
    return image, ops


def _is_single_image(X):
    if isinstance(X, (str, os.PathLike, *_ENCODED)):
        return True
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (2, 3):
        return True
    image_mod = import_optional("PIL.Image")
    return isinstance(X, image_mod.Image)


def as_image_list(X):
    """Return the items of an image collection as a list, with clear errors.

    Parameters
    ----------
    X : list, tuple, 1-D array, pandas/polars Series, single-column DataFrame,
        or 4-D numeric array of shape (n, H, W, C)
        The images.

    Returns
    -------
    list
        The items, in order.

    Examples
    --------
    >>> from skplice.embedding._images import as_image_list
    >>> as_image_list(("a.jpg", "b.png"))
    ['a.jpg', 'b.png']
    >>> as_image_list("a.jpg")
    Traceback (most recent call last):
    ...
    TypeError: Expected a collection of images, got a single image (str)...
    """
    if _is_single_image(X):
        raise TypeError(
            f"Expected a collection of images, got a single image ({type(X).__name__}). "
            "Wrap it in a list: transform([image])."
        )
    if hasattr(X, "columns") and hasattr(X, "shape"):  # pandas or polars DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"Expected a single column of images, got a DataFrame with {X.shape[1]} "
                "columns; select the image column (df['path'])."
            )
        X = X[X.columns[0]]
    if isinstance(X, np.ndarray):
        if X.dtype == object or X.dtype.kind in "US":
            if X.ndim == 2 and X.shape[1] == 1:
                X = X[:, 0]
            if X.ndim != 1:
                raise ValueError(
                    f"Expected a 1-D array of images, got an array of shape {X.shape}."
                )
            items = X.tolist()
        elif X.ndim == 4:
            items = list(X)
        else:
            raise ValueError(
                f"Expected a collection of images, got a numeric array of shape {X.shape}: "
                "pass a list of HxW / HxWxC arrays or one (n, H, W, C) array."
            )
    elif isinstance(X, (list, tuple)):
        items = list(X)
    elif hasattr(X, "to_list"):  # pandas Series / Index, polars Series
        items = X.to_list()
    else:
        raise TypeError(
            "Expected a list, tuple, 1-D array or Series of images (paths, bytes, PIL "
            f"images or arrays), got {type(X).__name__}."
        )
    if not items:
        raise ValueError("Found 0 images; at least one is required.")
    return items


def describe(item):
    """Short description of an input item for error messages: its path, or its kind.

    Examples
    --------
    >>> import numpy as np
    >>> from skplice.embedding._images import describe
    >>> describe("photos/cat.jpg")
    "'photos/cat.jpg'"
    >>> describe(np.zeros((4, 5, 3), dtype=np.uint8))
    'ndarray shape=(4, 5, 3) dtype=uint8'
    """
    if isinstance(item, (str, os.PathLike)):
        return shorten(repr(os.fspath(item)))
    if isinstance(item, _ENCODED):
        return f"{len(item)} bytes"
    if isinstance(item, np.ndarray):
        return f"ndarray shape={item.shape} dtype={item.dtype}"
    image_mod, _ = _pil()
    if isinstance(item, image_mod.Image):
        return f"PIL image mode={item.mode} size={item.size[0]}x{item.size[1]}"
    return type(item).__name__


def load_rgb(item, index):
    """Load one input item as an RGB :class:`PIL.Image.Image`.

    Raises
    ------
    ImageLoadError
        Naming ``index`` and the file (or the kind of in-memory item) on any failure.
    """
    image_mod, _ = _pil()
    try:
        if isinstance(item, (str, os.PathLike)):
            kind = non_regular_kind(item)  # before opening: a named pipe would block forever
            if kind:
                raise ImageLoadError(
                    index, describe(item), f"{kind}, not an image file (only files are read)"
                )
            return _open_encoded(os.fspath(item))
        if isinstance(item, _ENCODED):
            return _open_encoded(io.BytesIO(bytes(item)))
        if isinstance(item, image_mod.Image):
            return _to_rgb(_exif_transpose(item))
        if isinstance(item, np.ndarray):
            return _array_to_rgb(item)
        raise TypeError(
            f"unsupported item type {type(item).__name__}; expected a file path, "
            "encoded bytes, a PIL image or a numpy array"
        )
    except ImageLoadError:
        raise
    except FileNotFoundError as exc:
        reason = "file not found"
        if isinstance(item, str) and item.startswith(("http://", "https://")):
            reason += " (URLs are not downloaded: fetch the file or pass its bytes)"
        raise ImageLoadError(index, describe(item), reason) from exc
    except image_mod.DecompressionBombError as exc:
        raise ImageLoadError(
            index, describe(item), f"refused as a decompression bomb: {exc}"
        ) from exc
    except image_mod.DecompressionBombWarning as exc:  # raised when warnings are errors
        raise ImageLoadError(
            index, describe(item), f"refused as a decompression bomb: {exc}"
        ) from exc
    except Exception as exc:
        reason = shorten_words(f"{type(exc).__name__}: {exc}")  # an OSError quotes its path
        raise ImageLoadError(index, describe(item), reason) from exc


def _open_encoded(source):
    image_mod, _ = _pil()
    with image_mod.open(source) as im:
        limit = image_mod.MAX_IMAGE_PIXELS
        width, height = im.size
        if limit is not None and width * height > limit:
            # PIL only warns between 1x and 2x its limit; a warning is easy to miss and
            # the decode would still allocate the whole image, so refuse here too.
            raise image_mod.DecompressionBombError(
                f"image size ({width}x{height} = {width * height} pixels) exceeds "
                f"PIL.Image.MAX_IMAGE_PIXELS = {limit}; raise that limit if you trust "
                "the file"
            )
        im.load()  # decode now, inside the `with`: truncated files fail here
        return _to_rgb(_exif_transpose(im))


def _exif_transpose(im):
    _, ops = _pil()
    return ops.exif_transpose(im)


def _to_rgb(im):
    image_mod, _ = _pil()
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I") or mode == "F":
        pixels = _wide_to_uint8(np.asarray(im), sixteen_bit=mode.startswith("I;16"))
        return image_mod.fromarray(pixels, mode="L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        return _composite_on_white(im)
    return im.convert("RGB")


def _composite_on_white(im):
    image_mod, _ = _pil()
    background = image_mod.new("RGBA", im.size, (255, 255, 255, 255))
    return image_mod.alpha_composite(background, im).convert("RGB")


def _wide_to_uint8(a, sixteen_bit):
    """Map a 16-bit, 32-bit integer or float single-channel array to uint8.

    32-bit integer images ("I" mode) carry no bit depth: values above 255 are taken
    as 16-bit, others as 8-bit.
    """
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("float image contains NaN or infinite values")
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    a = a.astype(np.int64)
    if sixteen_bit or (a.size and a.max() > 255):
        return np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)


def _array_to_rgb(a):
    image_mod, _ = _pil()
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4):
            hint = " (channels-first? use np.moveaxis(image, 0, -1))"
        raise ValueError(
            f"an image array must be HxW or HxWxC with C in {{1, 3, 4}}; got shape {a.shape}{hint}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"empty image array of shape {a.shape}")
    a = _array_to_uint8(a)
    if a.ndim == 2:
        return image_mod.fromarray(a, mode="L").convert("RGB")
    if a.shape[-1] == 4:
        return _composite_on_white(image_mod.fromarray(a, mode="RGBA"))
    return image_mod.fromarray(a, mode="RGB")


def _array_to_uint8(a):
    kind = a.dtype.kind
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if kind == "b":
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return np.rint(a / 257.0).astype(np.uint8)
    if kind in "iu":
        lo, hi = a.min(), a.max()
        if lo < 0 or hi > 255:
            raise ValueError(
                f"integer image values must lie in [0, 255] (or use uint16); got [{lo}, {hi}]"
            )
        return a.astype(np.uint8)
    if kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("float image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float image values must lie in [0, 1]; got [{lo:g}, {hi:g}] "
                "(divide 0-255 data by 255, or pass uint8)"
            )
        return np.rint(a * 255.0).astype(np.uint8)
    raise ValueError(f"unsupported image array dtype {a.dtype}")
