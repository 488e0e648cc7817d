"""Small procedural meshes, named for segmentation: bpy-operator boxes and prisms, meshes from
vertex/face lists (tubes along a polyline, merged parts)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _finish(bp: Any, name: str, material: Any, bevel: float) -> Any:
    obj = bp.bpy.context.active_object
    obj.name = name
    obj.data.name = name
    if bevel > 0:
        modifier = obj.modifiers.new("bevel", "BEVEL")
        modifier.width = bevel
        modifier.segments = 2
    obj.data.materials.append(material)
    return obj


def box(bp: Any, name: str, size: tuple[float, float, float], location: tuple[float, float, float], material: Any, bevel: float = 0.0) -> Any:
    """Axis-aligned box of full ``size`` centred at ``location``."""
    bp.bpy.ops.mesh.primitive_cube_add(size=1.0, location=location, scale=size)
    bp.bpy.ops.object.transform_apply(location=False, rotation=False, scale=True)
    return _finish(bp, name, material, bevel)


def prism(
    bp: Any,
    name: str,
    radius: float,
    height: float,
    location: tuple[float, float, float],
    material: Any,
    sides: int = 32,
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0),
    bevel: float = 0.0,
) -> Any:
    """Cylinder (or hex prism with ``sides=6``) along local Z, centred at ``location``."""
    bp.bpy.ops.mesh.primitive_cylinder_add(vertices=sides, radius=radius, depth=height, location=location, rotation=rotation)
    obj = _finish(bp, name, material, bevel)
    if sides > 8:
        bp.bpy.ops.object.shade_smooth()
    return obj


def mesh_object(bp: Any, name: str, verts: list, faces: list, material: Any, smooth: bool = True) -> Any:
    """An object from raw vertices/faces, with face normals recalculated to point outwards."""
    import bmesh  # bpy's; only importable inside a render worker

    mesh = bp.bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    editable = bmesh.new()
    editable.from_mesh(mesh)
    bmesh.ops.recalc_face_normals(editable, faces=editable.faces)
    editable.to_mesh(mesh)
    editable.free()
    mesh.materials.append(material)
    for polygon in mesh.polygons:
        polygon.use_smooth = smooth
    obj = bp.bpy.data.objects.new(name, mesh)
    bp.bpy.context.scene.collection.objects.link(obj)
    return obj


def tube(path: np.ndarray, radius: float, sides: int = 12) -> tuple[list, list]:
    """Vertices/faces of a capped tube of ``radius`` around the polyline ``path`` (n×3)."""
    path = np.asarray(path, float)
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    reference = np.eye(3)[int(np.argmin(np.abs(tangents.mean(axis=0))))]  # axis least along the tube
    angles = np.linspace(0, 2 * math.pi, sides, endpoint=False)
    verts = []
    for point, tangent in zip(path, tangents):
        normal = np.cross(tangent, reference)
        normal /= np.linalg.norm(normal)
        binormal = np.cross(tangent, normal)
        verts.extend(tuple(point + radius * (math.cos(a) * normal + math.sin(a) * binormal)) for a in angles)
    faces = [(i * sides + k, i * sides + (k + 1) % sides, (i + 1) * sides + (k + 1) % sides, (i + 1) * sides + k)
             for i in range(len(path) - 1) for k in range(sides)]
    faces += [tuple(range(sides))[::-1], tuple(range((len(path) - 1) * sides, len(path) * sides))]
    return verts, faces


def merge(*parts: tuple[list, list]) -> tuple[list, list]:
    """One vertex/face list from several (vertex indices of later parts shifted)."""
    verts: list = []
    faces: list = []
    for part_verts, part_faces in parts:
        faces.extend(tuple(index + len(verts) for index in face) for face in part_faces)
        verts.extend(part_verts)
    return verts, faces
