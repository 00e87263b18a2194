"""Decimated copies of the arm's visual meshes, so that CPU camera rendering is cheaper.

The SO-101 meshes come from CAD and hold about 400k drawn triangles (most of them long
slivers); a software OpenGL renderer spent most of a frame on them. Only geoms that are
visual-only (contype 0 and conaffinity 0, in a body whose inertia is given explicitly) get a
decimated copy, added to the spec as a NEW mesh asset: the meshes used by collision geoms are
never touched and no mass or inertia depends on the copies, so the physics is unchanged.

Decimation: first weld vertices closer than a quarter of the target's mean edge length (the
CAD slivers otherwise block the quadric decimator, which refuses collapses that make
near-degenerate triangles), then quadric edge collapse with ``fast_simplification``. The
result is cached on disk, keyed by the source mesh's content hash and the target size.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import tempfile
from pathlib import Path

import mujoco
import numpy as np

# Bump when the decimation recipe changes: cached meshes of an older recipe are not reused.
_RECIPE_VERSION = 2
# Below this a part is a handful of triangles and no longer looks like itself.
_MIN_FACES_PER_MESH = 32
_WELD_CELL_PER_EDGE = 0.25
# fast_simplification's default (7) collapses edges far out of error order: on the moving jaw
# at 5% of its triangles that leaves 4 mm bumps, which fill the close-up wrist camera. 2 keeps
# the jaw within 0.7 mm (every part within about 2 mm) at the same triangle count and speed.
_AGGRESSIVENESS = 2
_STL_RECORD = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
_INSTALL_HINT = "pip install fast-simplification (a dependency of lerobot_policy_act_smooth)"


def mesh_cache_dir() -> Path:
    """Where decimated meshes are kept: $ACTSMOOTH_CACHE_DIR, else the user's cache folder."""
    root = os.environ.get("ACTSMOOTH_CACHE_DIR")
    if root:
        return Path(root) / "render_meshes"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "lerobot_policy_act_smooth" / "render_meshes"


def stl_face_count(path: Path) -> int | None:
    """Triangle count of a binary STL file, or None when ``path`` is not one."""
    if path.suffix.lower() != ".stl" or not path.is_file():
        return None
    with path.open("rb") as stream:
        header = stream.read(84)
    if len(header) < 84:
        return None
    count = int(np.frombuffer(header, "<u4", 1, 80)[0])
    # An ASCII STL can start like a binary one; only the exact size tells them apart.
    return count if path.stat().st_size == 84 + 50 * count else None


def read_binary_stl(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [V, 3] float64, faces [F, 3] int64) of a binary STL, shared corners merged."""
    count = int(np.frombuffer(data, "<u4", 1, 80)[0])
    corners = np.frombuffer(data, _STL_RECORD, count, 84)["corners"].reshape(-1, 3)
    # STL repeats every corner per triangle; the decimator needs them shared to see the surface.
    vertices, corner_to_vertex = np.unique(corners, axis=0, return_inverse=True)
    return vertices.astype(np.float64), corner_to_vertex.reshape(-1, 3).astype(np.int64)


def surface_area(vertices: np.ndarray, faces: np.ndarray) -> float:
    edge_a = vertices[faces[:, 1]] - vertices[faces[:, 0]]
    edge_b = vertices[faces[:, 2]] - vertices[faces[:, 0]]
    return float(0.5 * np.linalg.norm(np.cross(edge_a, edge_b), axis=1).sum())


def weld_vertices(vertices: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge the vertices that fall in one cube of side ``cell``; drop the triangles that collapse."""
    cells = np.floor(vertices / cell).astype(np.int64)
    _, vertex_to_cell, cell_sizes = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    vertex_to_cell = vertex_to_cell.ravel()
    centres = np.zeros((cell_sizes.size, 3))
    np.add.at(centres, vertex_to_cell, vertices)
    centres /= cell_sizes[:, None]
    welded = vertex_to_cell[faces]
    distinct = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2]) & (welded[:, 0] != welded[:, 2])
    welded = welded[distinct]
    # Two triangles over the same three vertices would z-fight; keep the first.
    _, first = np.unique(np.sort(welded, axis=1), axis=0, return_index=True)
    welded = welded[np.sort(first)]
    used, compact = np.unique(welded, return_inverse=True)
    return centres[used], compact.reshape(-1, 3)


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``target_faces`` triangles approximating the mesh (welding, then quadric decimation)."""
    try:
        import fast_simplification
    except ImportError:
        raise ImportError(
            f"decimated render meshes need the fast-simplification package: {_INSTALL_HINT}; "
            "or render the full meshes with render_mesh_faces=0"
        ) from None
    target_edge = np.sqrt(surface_area(vertices, faces) / target_faces)  # mean edge length once decimated
    vertices, faces = weld_vertices(vertices, faces, _WELD_CELL_PER_EDGE * target_edge)
    if len(faces) > target_faces:
        vertices, faces = fast_simplification.simplify(
            vertices, faces, target_count=target_faces, agg=_AGGRESSIVENESS
        )
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


@functools.lru_cache(maxsize=64)
def decimated_stl(path: str, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Decimated (vertices, faces) of a binary STL, read from the disk cache when there."""
    data = Path(path).read_bytes()
    # Another decimator release may place vertices differently: keep its meshes apart.
    key = hashlib.sha256(data + _decimator_release().encode()).hexdigest()[:20]
    cached = mesh_cache_dir() / f"{Path(path).stem}-{key}-{target_faces}-v{_RECIPE_VERSION}.npz"
    if cached.is_file():
        with np.load(cached) as stored:
            return stored["vertices"], stored["faces"]
    vertices, faces = decimate(*read_binary_stl(data), target_faces)
    try:
        _write_atomically(cached, vertices, faces)
    except OSError:
        pass  # a read-only or full cache folder only costs the decimation again next time
    return vertices, faces


def _decimator_release() -> str:
    try:
        return importlib.metadata.version("fast-simplification")
    except importlib.metadata.PackageNotFoundError:
        return "missing"  # decimate() then raises the error that names the install command


def _write_atomically(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, vertices=vertices, faces=faces)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mesh_path(spec: mujoco.MjSpec, mesh: mujoco.MjsMesh) -> Path:
    return Path(spec.modelfiledir) / spec.meshdir / mesh.file


def visual_only_mesh_geoms(spec: mujoco.MjSpec) -> list[mujoco.MjsGeom]:
    """Mesh geoms that take part in no collision and in no body's mass: only cameras see them.

    A geom's mesh sets its body's inertia unless the body has an explicit ``<inertial>``
    (and the compiler is not told to ignore it), so geoms of other bodies are left alone.
    """
    geoms_set_inertia = spec.compiler.inertiafromgeom == mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    return [
        geom
        for body in spec.bodies
        if body.explicitinertial and not geoms_set_inertia
        for geom in body.geoms
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.contype == 0 and geom.conaffinity == 0
    ]


def use_decimated_visual_meshes(spec: mujoco.MjSpec, total_faces: int) -> None:
    """Point the visual-only geoms of ``spec`` at decimated copies of their meshes.

    total_faces: budget of rendered triangles over all those geoms (a mesh drawn twice counts
    twice); every mesh is reduced by the same ratio. Meshes that are not binary STL files,
    and any mesh if the budget exceeds the full count, stay as they are.
    """
    geoms = visual_only_mesh_geoms(spec)
    meshes = {mesh.name: mesh for mesh in spec.meshes}
    face_counts = {name: stl_face_count(_mesh_path(spec, mesh)) for name, mesh in meshes.items()}
    rendered = sum(face_counts[geom.meshname] or 0 for geom in geoms)
    if rendered <= total_faces:
        return
    ratio = total_faces / rendered
    copies: dict[str, str] = {}
    for geom in geoms:
        source = meshes[geom.meshname]
        count = face_counts[source.name]
        target = max(_MIN_FACES_PER_MESH, round((count or 0) * ratio))
        if count is None or target >= count:
            continue
        if source.name not in copies:
            copies[source.name] = _add_decimated_copy(spec, source, target)
        geom.meshname = copies[source.name]


def _add_decimated_copy(spec: mujoco.MjSpec, source: mujoco.MjsMesh, target_faces: int) -> str:
    vertices, faces = decimated_stl(str(_mesh_path(spec, source)), target_faces)
    copy = spec.add_mesh(
        name=f"{source.name}_render{target_faces}",
        uservert=vertices.ravel().tolist(),
        userface=faces.ravel().tolist(),
    )
    # Same placement of the vertices as the source asset, so the part is drawn where it is.
    copy.scale = source.scale
    copy.refpos = source.refpos
    copy.refquat = source.refquat
    copy.smoothnormal = source.smoothnormal
    # A welded, decimated surface may not be watertight; a shell inertia never fails to compile
    # (and is unused: these geoms do not collide and the bodies' inertias are explicit).
    copy.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
    return copy.name
