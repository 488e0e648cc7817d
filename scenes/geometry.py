"""Small procedural meshes built with bpy operators (boxes, prisms), named for segmentation."""

from __future__ import annotations

from typing import Any


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
