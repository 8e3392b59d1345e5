"""THE image preprocessing: a file → the float32 [0, 1] NHWC pixels a model takes.

Decode with Pillow (a GIF's first frame), apply the EXIF orientation, bring 16-bit
grey and palettes to 8 bits, convert to the model's channels (alpha dropped),
centre-crop to the target aspect ratio, resize bilinearly (antialiased when
shrinking), scale to [0, 1]. Training's folder and CelebA readers, `python -m
export.encode` and the README's onnxruntime snippet all call this module, so a
deployed encoder sees exactly the pixels training saw. It imports no TensorFlow.
"""

import io
import os

import numpy as np
from PIL import Image
from PIL import ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def to_8_bit(image):
    """Scales 16/32-bit integer grayscale (e.g. 16-bit PNG) to 8 bits instead of clipping."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        values = np.asarray(image, np.float64) / 257.0
        return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    if image.mode in ("P", "PA"):
        # Palettes may carry transparency; going through RGBA keeps Pillow from warning.
        return image.convert("RGBA")
    return image


def center_crop_box(image_size, aspect, region=None):
    """Largest centred (left, top, right, bottom) pixel box of width/height ≈ `aspect`.

    Args:
        image_size: (width, height) of the image.
        aspect: float. Target width / height.
        region: int or None. Side of a centred square the box must stay inside (CelebA's 148).

    Returns:
        tuple of 4 ints, a box for `PIL.Image.crop`.
    """
    width, height = image_size
    if region is not None:
        width, height = min(width, region), min(height, region)
    box_width = max(1, round(min(width, height * aspect)))
    box_height = max(1, round(min(height, width / aspect)))
    # Offsets rounded like torchvision's CenterCrop, so CelebA crops match the reference.
    left = round((image_size[0] - box_width) / 2)
    top = round((image_size[1] - box_height) / 2)
    return (left, top, left + box_width, top + box_height)


def decode_image(source, image_shape, crop=None):
    """Reads one image, center-crops it to the target aspect ratio and resizes it.

    GIFs give their first frame; EXIF orientation is applied; alpha is dropped; colour or grayscale is converted to the
    channels of `image_shape`. The resize is Pillow's bilinear, antialiased when shrinking.

    Args:
        source: str path, bytes of an encoded image, or a binary file object.
        image_shape: (height, width, channels), channels 1 or 3.
        crop: int or None. Crop inside the centred crop×crop square first (CelebA: 148).

    Returns:
        uint8 array of `image_shape`.

    Raises:
        OSError, SyntaxError, ValueError, ...: whatever Pillow raises on a corrupt file.
    """
    height, width, channels = image_shape
    opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    with opened as image:
        image.load()  # the whole file: a truncated one fails here, not half-way
        image = ImageOps.exif_transpose(image)  # a photo's camera orientation, upright
        image = to_8_bit(image).convert("RGB" if channels == 3 else "L")
        # Crop first: resizing with a box would blend pixels from outside it into the edges.
        image = image.crop(center_crop_box(image.size, width / height, crop))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, np.uint8).reshape(image_shape)


def load_image(source, image_shape, crop=None):
    """`decode_image` scaled to float32 in [0, 1]: what the models take."""
    return decode_image(source, image_shape, crop).astype(np.float32) / 255.0


def list_image_files(root):
    """Image files under `root`, recursively, as sorted relative POSIX paths.

    Hidden files and directories (names starting with ".") are left out.

    Args:
        root: str. Directory.

    Returns:
        list of str.
    """
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        relative = os.path.relpath(directory, root)
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_EXTENSIONS):
                path = file if relative == "." else os.path.join(relative, file)
                found.append(path.replace(os.sep, "/"))
    return sorted(found)
