"""Codecs: media bytes <-> numpy arrays and meshes.

The lowest layer of lakefmt above :mod:`lakefmt.errors`. Each submodule turns one kind of
media into plain Python/numpy values and back, and knows nothing about datasets, columns or
storage:

* :mod:`lakefmt.codecs.image` -- JPEG, PNG and TIFF (Pillow): decoding to ``(H, W, C)``
  arrays, encoding, and parallel batch decoding; it re-exports the header sniffing of
  :mod:`lakefmt.codecs.image_headers` (dimensions, channels, completeness, from the bytes).
* :mod:`lakefmt.codecs.video` -- MP4/H.264 and other containers FFmpeg reads (PyAV):
  probing, frame-accurate range decoding to ``(T, H, W, 3)`` arrays, encoding.
* :mod:`lakefmt.codecs.mesh` -- STL and PLY (trimesh): sniffing, decoding, encoding.

Pillow, PyAV and trimesh are optional (``pip install 'lakefmt[media]'``) and imported only
when a codec function first needs them, so importing this package is cheap. Corrupt or
unrecognised bytes raise :class:`lakefmt.errors.DecodeError`; values of the wrong shape or
dtype raise :class:`lakefmt.errors.TypeMismatchError`; a missing optional package raises
:class:`lakefmt.errors.MissingDependencyError`.
"""

from __future__ import annotations

__all__ = ["image", "image_headers", "mesh", "video"]
