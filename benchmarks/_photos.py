"""A folder of distinct photos for the embedding benchmarks, from photos shipped in packages.

The photos of ``skimage.data`` and ``sklearn.datasets.load_sample_images`` are cut into
random crops (a fixed seed), every other one flipped, and saved as JPEG files: distinct
files (no two have the same bytes) with a class label each, the photo they come from.
"""

import numpy as np
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_sample_images

#: skimage.data photos that ship with the package (no download), RGB or grayscale.
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "camera", "coins", "moon", "clock", "brick",
)  # fmt: skip


def source_photos():
    """``{name: uint8 array}``: the skimage photos and sklearn's two sample images."""
    photos = {name: getattr(skdata, name)() for name in SKIMAGE_PHOTOS}
    china, flower = load_sample_images().images
    photos.update(china=china, flower=flower)
    return photos


def write_photos(folder, n_images, n_sources=None, seed=0):
    """Write ``n_images`` distinct JPEG crops to ``folder``; return (paths, labels).

    Crops of the first ``n_sources`` photos (all by default), in turn, cover 40-90% of
    the shorter side of their source, at a random place.
    """
    rng = np.random.default_rng(seed)
    photos = source_photos()
    names = list(photos)[:n_sources]
    paths, labels = [], []
    for i in range(n_images):
        name = names[i % len(names)]
        photo = photos[name]
        height, width = photo.shape[:2]
        side = int(min(height, width) * rng.uniform(0.4, 0.9))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = photo[top : top + side, left : left + side]
        if i % 2:
            crop = crop[:, ::-1]
        path = folder / f"{name}-{i:04d}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=90)
        paths.append(str(path))
        labels.append(name)
    return paths, np.array(labels)
