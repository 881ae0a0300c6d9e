"""Tests for lakefmt.codecs.mesh."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest
import trimesh
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lakefmt.codecs import mesh as cm
from lakefmt.errors import DecodeError, TypeMismatchError


@pytest.fixture
def codec_sphere() -> trimesh.Trimesh:
    """A float64 icosphere with shared vertices."""
    return trimesh.creation.icosphere(subdivisions=2)


def triangles(mesh: trimesh.Trimesh) -> np.ndarray:
    return np.asarray(mesh.vertices)[np.asarray(mesh.faces)]


# --- sniffing ------------------------------------------------------------------------------------
def test_sniff_formats(codec_sphere: trimesh.Trimesh) -> None:
    assert cm.sniff_mesh(cm.encode_mesh(codec_sphere, "ply")) == "ply"
    assert cm.sniff_mesh(codec_sphere.export(file_type="ply", encoding="ascii")) == "ply"
    assert cm.sniff_mesh(cm.encode_mesh(codec_sphere, "stl")) == "stl"
    assert cm.sniff_mesh(codec_sphere.export(file_type="stl_ascii").encode()) == "stl"


def test_sniff_binary_stl_whose_header_says_solid(codec_sphere: trimesh.Trimesh) -> None:
    data = b"solid exported by a CAD tool".ljust(80) + cm.encode_mesh(codec_sphere, "stl")[80:]
    assert cm.sniff_mesh(data) == "stl"
    np.testing.assert_array_equal(
        triangles(cm.decode_mesh(data)), triangles(codec_sphere).astype(np.float32)
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\x00" * 83,
        b"\x00" * 200,  # 0 triangles would need exactly 84 bytes
        b"solid nothing here\nendsolid\n",
        b"OFF\n3 1 0\n",
    ],
)
def test_sniff_rejects_unknown(data: bytes) -> None:
    with pytest.raises(DecodeError):
        cm.sniff_mesh(data)
    with pytest.raises(DecodeError):
        cm.decode_mesh(data)


def test_normalize_mesh_format() -> None:
    assert cm.normalize_mesh_format("STL") == "stl"
    assert cm.normalize_mesh_format(".ply") == "ply"
    with pytest.raises(ValueError, match="unknown mesh format"):
        cm.normalize_mesh_format("obj")


# --- round trips ---------------------------------------------------------------------------------
def test_ply_round_trip_is_exact(codec_sphere: trimesh.Trimesh) -> None:
    rng = np.random.default_rng(3)
    vertices = codec_sphere.vertices + rng.normal(scale=1e-9, size=codec_sphere.vertices.shape)
    mesh = trimesh.Trimesh(vertices, codec_sphere.faces, process=False)
    decoded = cm.decode_mesh(cm.encode_mesh(mesh, "ply"))
    assert isinstance(decoded, trimesh.Trimesh)
    assert decoded.vertices.dtype == np.float64
    np.testing.assert_array_equal(decoded.vertices, vertices)  # no float32 rounding
    np.testing.assert_array_equal(decoded.faces, codec_sphere.faces)


def test_ply_float32_vertices_stay_float32_sized(codec_sphere: trimesh.Trimesh) -> None:
    mesh = SimpleNamespace(
        vertices=codec_sphere.vertices.astype(np.float32), faces=codec_sphere.faces
    )
    data = cm.encode_mesh(mesh, "ply")
    assert b"property float x" in data
    decoded = cm.decode_mesh(data)
    np.testing.assert_array_equal(decoded.vertices, mesh.vertices)
    np.testing.assert_array_equal(decoded.faces, mesh.faces)


def test_ply_keeps_colours(codec_sphere: trimesh.Trimesh) -> None:
    rng = np.random.default_rng(5)
    by_vertex = codec_sphere.copy()
    by_vertex.visual.vertex_colors = rng.integers(0, 256, (len(by_vertex.vertices), 4), np.uint8)
    decoded = cm.decode_mesh(cm.encode_mesh(by_vertex))
    np.testing.assert_array_equal(decoded.visual.vertex_colors, by_vertex.visual.vertex_colors)
    by_face = codec_sphere.copy()
    by_face.visual.face_colors = rng.integers(0, 256, (len(by_face.faces), 4), np.uint8)
    decoded = cm.decode_mesh(cm.encode_mesh(by_face))
    np.testing.assert_array_equal(decoded.visual.face_colors, by_face.visual.face_colors)


def test_ply_without_colours_has_no_colour_properties(codec_sphere: trimesh.Trimesh) -> None:
    assert b"red" not in cm.encode_mesh(codec_sphere).split(b"end_header")[0]


def test_encoding_is_deterministic(codec_sphere: trimesh.Trimesh) -> None:
    for fmt in cm.MESH_FORMATS:
        assert cm.encode_mesh(codec_sphere, fmt) == cm.encode_mesh(codec_sphere.copy(), fmt)


def test_binary_stl_round_trip(codec_sphere: trimesh.Trimesh) -> None:
    data = cm.encode_mesh(codec_sphere, "stl")
    assert len(data) == 84 + 50 * len(codec_sphere.faces)
    assert not data.startswith(b"solid")
    decoded = cm.decode_mesh(data)
    # STL stores each triangle's corners separately, as float32, in face order
    assert decoded.vertices.shape == (3 * len(codec_sphere.faces), 3)
    np.testing.assert_array_equal(
        decoded.faces, np.arange(3 * len(codec_sphere.faces)).reshape(-1, 3)
    )
    np.testing.assert_array_equal(triangles(decoded), triangles(codec_sphere).astype(np.float32))
    # the stored normals are the unit face normals
    normals = np.frombuffer(data[84:], cm._STL_RECORD)["normal"]
    np.testing.assert_allclose(normals, codec_sphere.face_normals, atol=1e-6)


def test_ascii_stl_decodes(codec_sphere: trimesh.Trimesh) -> None:
    decoded = cm.decode_mesh(codec_sphere.export(file_type="stl_ascii").encode())
    np.testing.assert_allclose(triangles(decoded), triangles(codec_sphere), rtol=1e-6, atol=1e-6)


def test_ascii_ply_decodes_exactly_in_order(codec_sphere: trimesh.Trimesh) -> None:
    data = codec_sphere.export(file_type="ply", encoding="ascii")
    decoded = cm.decode_mesh(data)
    np.testing.assert_array_equal(decoded.faces, codec_sphere.faces)
    np.testing.assert_allclose(decoded.vertices, codec_sphere.vertices, rtol=1e-6)


def test_duplicate_vertices_are_not_merged() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]], float)
    faces = np.array([[0, 1, 2], [3, 4, 2]])
    decoded = cm.decode_mesh(cm.encode_mesh(SimpleNamespace(vertices=vertices, faces=faces)))
    np.testing.assert_array_equal(decoded.vertices, vertices)
    np.testing.assert_array_equal(decoded.faces, faces)


@pytest.mark.parametrize("fmt", cm.MESH_FORMATS)
def test_empty_mesh_round_trip(fmt: str) -> None:
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int), process=False)
    decoded = cm.decode_mesh(cm.encode_mesh(empty, fmt))
    assert isinstance(decoded, trimesh.Trimesh)
    assert decoded.faces.shape == (0, 3)


def test_point_cloud_ply_gives_mesh_without_faces() -> None:
    points = np.random.default_rng(0).random((7, 3))
    decoded = cm.decode_mesh(trimesh.PointCloud(points).export(file_type="ply"))
    assert isinstance(decoded, trimesh.Trimesh)
    assert decoded.faces.shape == (0, 3)
    np.testing.assert_allclose(decoded.vertices, points, rtol=1e-6)


@given(
    vertices=hnp.arrays(
        np.float64,
        st.tuples(st.integers(3, 40), st.just(3)),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    seed=st.integers(0, 2**32 - 1),
    n_faces=st.integers(0, 40),
)
def test_ply_round_trip_random(vertices: np.ndarray, seed: int, n_faces: int) -> None:
    faces = np.random.default_rng(seed).integers(0, len(vertices), (n_faces, 3))
    data = cm.encode_mesh(SimpleNamespace(vertices=vertices, faces=faces), "ply")
    decoded = cm.decode_mesh(data)
    np.testing.assert_array_equal(decoded.vertices, vertices)
    np.testing.assert_array_equal(decoded.faces, faces.reshape(-1, 3))
    stl = cm.decode_mesh(cm.encode_mesh(SimpleNamespace(vertices=vertices, faces=faces), "stl"))
    np.testing.assert_array_equal(triangles(stl), vertices[faces].astype(np.float32))


# --- corrupt input -------------------------------------------------------------------------------
def test_binary_stl_with_wrong_triangle_count_raises(codec_sphere: trimesh.Trimesh) -> None:
    data = bytearray(cm.encode_mesh(codec_sphere, "stl"))
    struct.pack_into("<I", data, 80, len(codec_sphere.faces) + 1)
    with pytest.raises(DecodeError, match="triangles need"):
        cm.decode_mesh(bytes(data))
    with pytest.raises(DecodeError):
        cm.decode_mesh(cm.encode_mesh(codec_sphere, "stl")[:-7])


def test_ply_with_bad_header_raises(codec_sphere: trimesh.Trimesh) -> None:
    good = cm.encode_mesh(codec_sphere)
    bad_count = good.replace(b"element vertex 162", b"element vertex abc")
    assert bad_count != good
    unknown_format = good.replace(b"binary_little_endian", b"binary_middle_endian")
    no_end = good.replace(b"end_header", b"end_headxr")
    for data in (bad_count, unknown_format, no_end, b"ply\n", b"ply\nformat ascii 1.0\n"):
        with pytest.raises(DecodeError):
            cm.decode_mesh(data)


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_truncated_ply_raises(codec_sphere: trimesh.Trimesh, keep: float) -> None:
    data = cm.encode_mesh(codec_sphere)
    with pytest.raises(DecodeError):
        cm.decode_mesh(data[: int(len(data) * keep)])


def test_ply_with_out_of_range_face_raises(codec_sphere: trimesh.Trimesh) -> None:
    data = bytearray(cm.encode_mesh(codec_sphere))
    # the last 4 bytes are the last face's last index
    struct.pack_into("<i", data, len(data) - 4, 10_000)
    with pytest.raises(DecodeError, match="out of range"):
        cm.decode_mesh(bytes(data))


def test_garbage_ascii_stl_raises() -> None:
    data = b"solid broken\n facet normal 0 0 1\n outer loop\n vertex 1 2\n endloop\n"
    with pytest.raises(DecodeError):
        cm.decode_mesh(data)


# --- encode errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mesh", "match"),
    [
        (object(), "vertices"),
        (SimpleNamespace(vertices=np.zeros((3, 2)), faces=[[0, 1, 2]]), "vertices"),
        (SimpleNamespace(vertices=np.array([["a"] * 3] * 3), faces=[[0, 1, 2]]), "vertices"),
        (SimpleNamespace(vertices=np.zeros((3, 3)), faces=[[0, 1, 2, 0]]), "faces"),
        (SimpleNamespace(vertices=np.zeros((3, 3)), faces=[[0.0, 1.0, 2.0]]), "faces"),
        (SimpleNamespace(vertices=np.zeros((3, 3)), faces=[[0, 1, 3]]), "0..2"),
        (SimpleNamespace(vertices=np.zeros((3, 3)), faces=[[0, -1, 2]]), "0..2"),
    ],
)
@pytest.mark.parametrize("fmt", cm.MESH_FORMATS)
def test_encode_rejects_bad_meshes(mesh: object, match: str, fmt: str) -> None:
    with pytest.raises(TypeMismatchError, match=match):
        cm.encode_mesh(mesh, fmt)


def test_encode_rejects_unknown_format(codec_sphere: trimesh.Trimesh) -> None:
    with pytest.raises(ValueError, match="unknown mesh format"):
        cm.encode_mesh(codec_sphere, "obj")
