"""Triangle mesh codec: STL and PLY bytes <-> ``trimesh.Trimesh``.

Decoding goes through trimesh with ``process=False``, so vertices come back in file order and
are never merged. Encoding is done here with numpy (no trimesh needed) so that the output is
deterministic and exact:

* PLY is binary little-endian; float64 vertices are written as ``double`` (trimesh's own
  exporter would round them to float32), float32 vertices as ``float``. Per-vertex or
  per-face RGBA colours of a ``trimesh.Trimesh`` are kept.
* STL is binary. STL stores every triangle separately as float32 corners, so after a round
  trip ``mesh.vertices[mesh.faces]`` is preserved (rounded to float32) but shared vertices
  are not.
"""

from __future__ import annotations

import io
import re
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from lakefmt.codecs._deps import require
from lakefmt.errors import DecodeError, InvalidArgumentError, TypeMismatchError

if TYPE_CHECKING:
    import trimesh

__all__ = ["MESH_FORMATS", "decode_mesh", "encode_mesh", "normalize_mesh_format", "sniff_mesh"]

MESH_FORMATS = ("stl", "ply")

_STL_HEADER_SIZE = 84
_STL_RECORD_SIZE = 50
# a binary STL header must not start with b"solid", or readers may take it for ASCII
_STL_HEADER = b"binary STL written by lakefmt".ljust(80, b" ")
_PLY_ENCODINGS = ("ascii", "binary_little_endian", "binary_big_endian")
_MAX_PLY_HEADER = 1 << 16
_FACET_START = re.compile(rb"^\s*facet\b", re.MULTILINE | re.IGNORECASE)
_FACET_END = re.compile(rb"^\s*endfacet\b", re.MULTILINE | re.IGNORECASE)
_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])


def normalize_mesh_format(name: str) -> str:
    """Return the canonical name of a mesh format.

    Args:
        name: ``"stl"`` or ``"ply"``, any case, with or without a leading dot.

    Returns:
        One of :data:`MESH_FORMATS`.

    Raises:
        InvalidArgumentError: The format is not one lakefmt stores.
    """
    key = str(name).strip().lower().lstrip(".")
    if key not in MESH_FORMATS:
        raise InvalidArgumentError(
            f"unknown mesh format {name!r}; expected one of {', '.join(MESH_FORMATS)}"
        )
    return key


def sniff_mesh(data: bytes) -> str:
    """Identify a mesh file from its bytes.

    Args:
        data: The encoded mesh.

    Returns:
        ``"ply"`` (starts with ``b"ply"``) or ``"stl"`` (binary: an 80-byte header and a
        triangle count matching the size exactly; ASCII: starts with ``solid`` and has
        ``facet`` records).

    Raises:
        DecodeError: ``data`` is empty or neither a PLY nor a well-formed STL file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeMismatchError(f"mesh data must be bytes, got {type(data).__name__}")
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise DecodeError("mesh data is empty")
    if data.startswith(b"ply"):
        return "ply"
    # binary first: many binary STL headers also begin with "solid"
    if _is_binary_stl(data):
        return "stl"
    if data.lstrip()[:5].lower() == b"solid" and b"facet" in data:
        return "stl"
    detail = ""
    if len(data) >= _STL_HEADER_SIZE:
        (count,) = struct.unpack_from("<I", data, 80)
        expected = _STL_HEADER_SIZE + _STL_RECORD_SIZE * count
        detail = f"; as a binary STL its {count} triangles need {expected} bytes"
    raise DecodeError(
        f"not a PLY or STL mesh (starts with {data[:8]!r}, {len(data)} bytes{detail})"
    )


def decode_mesh(data: bytes) -> trimesh.Trimesh:
    """Decode STL or PLY bytes to a triangle mesh, keeping vertex order.

    Args:
        data: The encoded mesh.

    Returns:
        A ``trimesh.Trimesh`` loaded with ``process=False``. A PLY without faces (a point
        cloud) gives a mesh with zero faces; files with several bodies are concatenated.

    Raises:
        DecodeError: ``data`` is not a PLY/STL file, or it is corrupt or truncated.
    """
    fmt = sniff_mesh(data)
    if fmt == "ply":
        _check_ply_header(data)
    trimesh_mod = require("trimesh")
    try:
        loaded = trimesh_mod.load(io.BytesIO(data), file_type=fmt, process=False)
    except Exception as exc:  # trimesh's parsers raise ValueError, IndexError, KeyError, ...
        raise DecodeError(f"corrupt {fmt.upper()} mesh: {exc}") from exc
    mesh = _as_trimesh(trimesh_mod, loaded, fmt)
    faces = np.asarray(mesh.faces)
    if faces.size and (faces.min() < 0 or faces.max() >= len(mesh.vertices)):
        raise DecodeError(
            f"corrupt {fmt.upper()} mesh: face indices out of range for "
            f"{len(mesh.vertices)} vertices"
        )
    if fmt == "ply":
        _check_ply_counts(data, mesh)
    if fmt == "stl" and not _is_binary_stl(data):
        # trimesh skips facets it cannot parse; every facet must have made a face
        starts = len(_FACET_START.findall(data))
        ends = len(_FACET_END.findall(data))
        if not starts == ends == len(faces):
            raise DecodeError(
                f"corrupt ASCII STL mesh: {starts} facets opened, {ends} closed, "
                f"{len(faces)} parsed"
            )
    return mesh


def _is_binary_stl(data: bytes) -> bool:
    if len(data) < _STL_HEADER_SIZE:
        return False
    (count,) = struct.unpack_from("<I", data, 80)
    return len(data) == _STL_HEADER_SIZE + _STL_RECORD_SIZE * count


def _check_ply_header(data: bytes) -> None:
    # trimesh shrugs at some broken headers (an unknown format, say) and reads garbage
    end = data.find(b"end_header", 0, _MAX_PLY_HEADER)
    if end < 0:
        raise DecodeError("corrupt PLY mesh: no end_header line in the header")
    try:
        lines = data[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise DecodeError("corrupt PLY mesh: the header is not ASCII text") from None
    words = [line.split() for line in lines if line.strip()]
    if words[0] != ["ply"]:
        raise DecodeError("corrupt PLY mesh: the first line is not 'ply'")
    body = [w for w in words[1:] if w[0] not in ("comment", "obj_info")]
    if not body or len(body[0]) != 3 or body[0][0] != "format" or body[0][1] not in _PLY_ENCODINGS:
        raise DecodeError(
            f"corrupt PLY mesh: expected 'format <{'|'.join(_PLY_ENCODINGS)}> 1.0' after 'ply'"
        )
    for w in body[1:]:
        if w[0] == "element" and (len(w) != 3 or not w[2].isdigit()):
            raise DecodeError(f"corrupt PLY mesh: bad element line {' '.join(w)!r}")
        if w[0] not in ("element", "property"):
            raise DecodeError(f"corrupt PLY mesh: unexpected header line {' '.join(w)!r}")


def _check_ply_counts(data: bytes, mesh: trimesh.Trimesh) -> None:
    """Refuse a PLY whose body holds fewer vertices or faces than its header declares
    (trimesh reads a cut ASCII body without complaint)."""
    end = data.find(b"end_header", 0, _MAX_PLY_HEADER)
    declared: dict[str, int] = {}
    for line in data[:end].decode("ascii").splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "element":
            declared[words[1]] = int(words[2])
    vertices = declared.get("vertex", 0)
    faces = declared.get("face", 0)
    # polygons are split into triangles, so a whole file has at least as many faces
    if len(mesh.vertices) != vertices or len(mesh.faces) < faces:
        raise DecodeError(
            f"truncated or corrupt PLY mesh: the header declares {vertices} vertices and "
            f"{faces} faces, the body holds {len(mesh.vertices)} and {len(mesh.faces)}"
        )


def _as_trimesh(trimesh_mod: Any, loaded: Any, fmt: str) -> trimesh.Trimesh:
    if isinstance(loaded, trimesh_mod.Trimesh):
        return loaded
    empty_faces = np.zeros((0, 3), np.int64)
    if isinstance(loaded, trimesh_mod.Scene):
        meshes = [g for g in loaded.geometry.values() if isinstance(g, trimesh_mod.Trimesh)]
        if len(meshes) == 1:
            return meshes[0]
        if meshes:
            return trimesh_mod.util.concatenate(meshes)
        if not loaded.geometry:  # e.g. an STL with zero triangles
            return trimesh_mod.Trimesh(np.zeros((0, 3)), empty_faces, process=False)
    if isinstance(loaded, trimesh_mod.PointCloud):
        return trimesh_mod.Trimesh(np.asarray(loaded.vertices), empty_faces, process=False)
    raise DecodeError(f"the {fmt.upper()} file holds a {type(loaded).__name__}, not a mesh")


def encode_mesh(mesh: Any, format: str = "ply") -> bytes:
    """Encode a triangle mesh as binary PLY or binary STL.

    Args:
        mesh: A ``trimesh.Trimesh``, or any object with ``vertices`` (``(N, 3)`` numbers)
            and ``faces`` (``(M, 3)`` integer indices into ``vertices``).
        format: ``"ply"`` or ``"stl"``.

    Returns:
        The encoded bytes.

    Raises:
        TypeMismatchError: ``mesh`` lacks ``vertices``/``faces``, or they have the wrong
            shape or dtype, or a face index is out of range.
        InvalidArgumentError: ``format`` is unknown.
    """
    fmt = normalize_mesh_format(format)
    vertices, faces = _mesh_arrays(mesh)
    if fmt == "stl":
        return _encode_stl(vertices, faces)
    return _encode_ply(vertices, faces, _colors(mesh, len(vertices), len(faces)))


def _mesh_arrays(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        vertices = np.asarray(mesh.vertices)
        faces = np.asarray(mesh.faces)
    except AttributeError:
        raise TypeMismatchError(
            f"expected a mesh with 'vertices' and 'faces', got {type(mesh).__name__}"
        ) from None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.dtype.kind not in "fiu":
        raise TypeMismatchError(
            f"mesh vertices must be an (N, 3) numeric array; got {vertices.dtype} {vertices.shape}"
        )
    if faces.size == 0:
        faces = faces.reshape(0, 3).astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
        raise TypeMismatchError(
            f"mesh faces must be an (M, 3) integer array of triangles; "
            f"got {faces.dtype} {faces.shape}"
        )
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise TypeMismatchError(
            f"mesh face indices must be in 0..{len(vertices) - 1}; got {faces.min()}..{faces.max()}"
        )
    if vertices.dtype != np.float32:
        vertices = vertices.astype(np.float64, copy=False)
    return vertices, faces


def _colors(mesh: Any, n_vertices: int, n_faces: int) -> tuple[str, np.ndarray] | None:
    # only explicit colours (trimesh's ColorVisuals with kind "vertex"/"face") are written;
    # reading mesh.visual.*_colors otherwise would invent default grey colours
    visual: Any = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        colors = np.asarray(visual.vertex_colors)
        if colors.shape == (n_vertices, 4):
            return "vertex", colors.astype(np.uint8)
    elif kind == "face":
        colors = np.asarray(visual.face_colors)
        if colors.shape == (n_faces, 4):
            return "face", colors.astype(np.uint8)
    return None


def _encode_ply(
    vertices: np.ndarray, faces: np.ndarray, colors: tuple[str, np.ndarray] | None
) -> bytes:
    scalar = "float" if vertices.dtype == np.float32 else "double"
    rgba = [("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    coord = "<f4" if scalar == "float" else "<f8"
    vertex_fields: list[tuple[str, str]] = [("x", coord), ("y", coord), ("z", coord)]
    face_fields: list[Any] = [("count", "u1"), ("indices", "<i4", (3,))]
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by lakefmt",
        f"element vertex {len(vertices)}",
        *(f"property {scalar} {axis}" for axis in "xyz"),
    ]
    if colors and colors[0] == "vertex":
        header += [f"property uchar {name}" for name, _ in rgba]
        vertex_fields += rgba
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    if colors and colors[0] == "face":
        header += [f"property uchar {name}" for name, _ in rgba]
        face_fields += rgba
    header.append("end_header")

    vertex_rows = np.empty(len(vertices), np.dtype(vertex_fields))
    vertex_rows["x"], vertex_rows["y"], vertex_rows["z"] = vertices.T
    face_rows = np.empty(len(faces), np.dtype(face_fields))
    face_rows["count"] = 3
    face_rows["indices"] = faces
    if colors:
        rows = vertex_rows if colors[0] == "vertex" else face_rows
        for i, (name, _) in enumerate(rgba):
            rows[name] = colors[1][:, i]
    return ("\n".join(header) + "\n").encode("ascii") + vertex_rows.tobytes() + face_rows.tobytes()


def _encode_stl(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    corners = vertices[faces].astype(np.float64)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    # degenerate triangles get a zero normal instead of NaN
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    records = np.zeros(len(faces), _STL_RECORD)
    records["normal"] = normals
    records["corners"] = corners
    return _STL_HEADER + struct.pack("<I", len(faces)) + records.tobytes()
