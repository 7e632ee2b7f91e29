"""Images and audio for load_file: Pillow (with its decompression-bomb guard set from the free
memory), soundfile, and scipy.io.wavfile for WAV variants libsndfile lacks; and the tries by
content for files no type claims."""

from __future__ import annotations

import os

import sandbox_detect as detect
from sandbox_archives import Source
from sandbox_errors import (
    LoadError,
    TooLargeToLoadError,
    failed,
    guard,
    missing,
    note,
    require,
    too_large,
)

# Formats Pillow may claim for bytes that are not images (no magic number of their own): only
# believed when the name says so too.
_WEAK_IMAGE_FORMATS = frozenset(
    {
        "TGA",
        "PCX",
        "SPIDER",
        "XVTHUMB",
        "MSP",
        "PALM",
        "MPEG",
        "MCIDAS",
        "IPTC",
        "PCD",
        "FTEX",
        "GBR",
        "WMF",
        "IM",
        "CUR",
        "ICO",
        "DCX",
        "WAL",
        "IMT",
    }
)
# Plugins that only identify a format (no decoder in Pillow).
_STUB_IMAGE_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "MPEG"})


_IMAGE_FIX = (
    "PIL.Image.open(get_file_path(...)) opens it lazily; .reduce(n), .draft() (JPEG) or "
    ".crop() decode less."
)


def load_image(source: Source, options: dict):
    image_module = require("PIL.Image", "pillow", source)
    free, _ = detect.memory_budget()
    saved = image_module.MAX_IMAGE_PIXELS
    if free:  # Pillow refuses images of more than twice this many pixels before decoding
        image_module.MAX_IMAGE_PIXELS = max(1, free // 16)
    try:
        image = image_module.open(source.path(), **options)
        width, height = image.size
        bands = len(image.getbands())
        per_band = 4 if image.mode in ("I", "F", "I;32") else 2 if "16" in image.mode else 1
        guard(
            source,
            width * height * bands * per_band,
            f"its {width} x {height} pixels ({image.mode})",
            _IMAGE_FIX,
        )
        image.load()
    except image_module.DecompressionBombError as exc:
        import re

        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        what = f"it declares {count}"
        raise too_large(
            source,
            f"{what}, past Pillow's decompression-bomb limit for the memory this run has free",
            _IMAGE_FIX,
        ) from None
    except image_module.UnidentifiedImageError:
        package = {
            "heic": ("pillow_heif", "pillow-heif"),
            "raw_photo": ("rawpy", "rawpy"),
            "exr": ("OpenEXR", "OpenEXR"),
        }.get(source.type)
        if package:
            raise missing(package[0], package[1], source) from None
        raise LoadError(
            f"load_file({source.label}): Pillow does not recognise it as an image, "
            f"though it was taken for {detect.describe(source.type)} "
            f"({source.type}): it may be damaged or another format. "
            f"get_file_path({source.entry.id!r}) gives its path."
        ) from None
    finally:
        image_module.MAX_IMAGE_PIXELS = saved
    source.keep = getattr(image, "n_frames", 1) > 1  # later frames are read from the file
    return image


def try_image(source: Source):
    """An image Pillow recognises by content, for a file no type claimed; None if it is not."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(source.path()) as probe:
            fmt = probe.format
    except Exception:
        return None
    extensions = {ext for ext, name in Image.registered_extensions().items() if name == fmt}
    if fmt in _WEAK_IMAGE_FORMATS and os.path.splitext(source.name)[1].lower() not in extensions:
        return None
    if fmt in _STUB_IMAGE_FORMATS:
        return None
    source.type, source.by_content = "image_by_content", True
    try:
        image = load_image(source, {})
    except TooLargeToLoadError:
        raise
    except LoadError:
        return None  # Pillow named a format but cannot decode it: the bytes, then
    note(f"{source.label} is an image Pillow recognises by its content ({fmt}): opened it")
    return image


def load_audio(source: Source, options: dict):
    soundfile = require("soundfile", "soundfile", source)
    path = source.path()
    try:
        info = soundfile.info(path)
        guard(
            source,
            8 * info.frames * info.channels,
            f"its {info.frames:,} frames of {info.channels} channel(s)",
            "frames=N and start=N read a part; dtype='int16' takes a quarter of the memory.",
        )
        data, rate = soundfile.read(path, **options)
    except RuntimeError as exc:  # soundfile's "format not recognised"
        if source.type in ("m4a", "wma", "midi", "mp4"):
            raise missing("audioread", "audioread (with ffmpeg) or pydub", source) from None
        if source.type == "wav":  # scipy reads WAV variants libsndfile does not (36-bit...)
            try:
                from scipy.io import wavfile

                rate, data = wavfile.read(path)
            except Exception:
                raise failed(source, exc, "") from None
            note(
                f"{source.label}: libsndfile cannot read this WAV variant ({exc}); read with "
                "scipy.io.wavfile (integer samples, not scaled to [-1, 1])"
            )
            return data, rate
        raise failed(source, exc, "") from None
    return data, rate


def try_audio(source: Source):
    """Audio libsndfile recognises by content (MP3 without a tag...), for a file no type claimed."""
    try:
        import soundfile

        info = soundfile.info(source.path())
    except Exception:
        return None
    if info.frames <= 0 or info.format in ("RAW",):
        return None
    source.type = {
        "WAV": "wav",
        "FLAC": "flac",
        "OGG": "ogg",
        "MP3": "mp3",
        "AIFF": "aiff",
        "AU": "au",
        "CAF": "caf",
        "W64": "w64",
    }.get(info.format, "wav")
    source.by_content = True
    note(f"{source.label} is audio libsndfile recognises by its content ({info.format}): read it")
    return load_audio(source, {})
