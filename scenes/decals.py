"""Surface defects as thin geometry conformed to a host surface (crack grooves, pits, stains, wear).

A ``Decal`` owns one hidden object and a few pre-built shape meshes (made from a fixed seed, so
every worker has the same shapes). ``place`` shows it at a random camera-facing point of the
host, aligned with the surface normal and shrink-wrapped onto it; the returned ``DefectChange``
names the decal object, so the mask is exactly its visible footprint in the render.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mkdata.scenes.base import DefectChange
from mkdata.seeds import name_code

ShapeFn = Callable[[np.random.Generator], tuple[list[tuple[float, float, float]], list[tuple[int, ...]]]]
SURFACE_OFFSET = 0.0004  # metres above the host, so the decal wins the depth test


def crack_shape(rng: np.random.Generator, width: float, branches: int, taper: float = 0.7, wiggle: float = 0.35,
                segments: int = 14) -> tuple[list, list]:
    """A meandering line of unit length along X (a crack groove, cell crack or snail trail),
    ``width`` wide at its start and narrowing by the fraction ``taper`` towards its end, with
    ``branches`` side lines starting from points of it. ``wiggle`` is the heading's random turn
    per segment (radians); with ``taper=0`` the whole line stays ``width`` wide in the render."""
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, ...]] = []

    def line(start: np.ndarray, heading: float, length: float, count: int, half_width: float) -> list[np.ndarray]:
        points = [start]
        for _ in range(count):
            heading += rng.normal(0, wiggle)
            points.append(points[-1] + length / count * np.array([math.cos(heading), math.sin(heading)]))
        for k, point in enumerate(points):
            direction = points[min(k + 1, count)] - points[max(k - 1, 0)]
            side = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction) * half_width * (1 - taper * k / count)
            base = len(verts)
            verts.extend([(*(point + side), 0.0), (*(point - side), 0.0)])
            if k > 0:
                faces.append((base - 2, base - 1, base + 1, base))
        return points

    main = line(np.array([-0.5, 0.0]), 0.0, 1.0, segments, width / 2)
    for _ in range(branches):
        origin = main[int(rng.integers(2, segments - 1))]
        line(origin, rng.choice([-1, 1]) * rng.uniform(0.5, 1.3), rng.uniform(0.2, 0.45), segments // 3, 0.4 * width)
    return verts, faces


def blob_shape(rng: np.random.Generator, roughness: float = 0.25, points: int = 20) -> tuple[list, list]:
    """An irregular disc of radius ~0.5 (a stain, hot spot or worn patch)."""
    angles = np.linspace(0, 2 * math.pi, points, endpoint=False)
    radii = 0.5 * (1 + roughness * np.convolve(rng.normal(size=points + 4), np.ones(5) / 5, "valid"))
    verts = [(0.0, 0.0, 0.0)] + [(r * math.cos(a), r * math.sin(a), 0.0) for r, a in zip(radii, angles)]
    faces = [(0, 1 + k, 1 + (k + 1) % points) for k in range(points)]
    return verts, faces


def pits_shape(rng: np.random.Generator, count: int = 7, sides: int = 8) -> tuple[list, list]:
    """A cluster of small round pits within a unit disc (weld porosity)."""
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, ...]] = []
    for _ in range(count):
        centre, radius = rng.uniform(-0.4, 0.4, 2), rng.uniform(0.06, 0.14)
        base = len(verts)
        verts.append((*centre, 0.0))
        verts.extend((centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a), 0.0)
                     for a in np.linspace(0, 2 * math.pi, sides, endpoint=False))
        faces.extend((base, base + 1 + k, base + 1 + (k + 1) % sides) for k in range(sides))
    return verts, faces


class Decal:
    """One kind of surface defect for one scene."""

    def __init__(self, bp: Any, name: str, material: Any, shape: ShapeFn, size: tuple[float, float],
                 elongation: tuple[float, float] = (0.8, 1.25), variants: int = 6) -> None:
        """``size``: range of the decal's width in metres; ``elongation``: range of length/width."""
        bpy = bp.bpy
        self.bp, self.name, self.size, self.elongation = bp, name, size, elongation
        rng = np.random.default_rng(name_code(name))  # same shapes in every worker
        self.meshes = []
        for k in range(variants):
            verts, faces = shape(rng)
            mesh = bpy.data.meshes.new(f"{name}_shape{k}")
            mesh.from_pydata(verts, [], faces)
            mesh.materials.append(material)
            self.meshes.append(mesh)
        self.obj = bpy.data.objects.new(name, self.meshes[0])
        bpy.context.scene.collection.objects.link(self.obj)
        self.obj.hide_render = True
        self.wrap = self.obj.modifiers.new("conform", "SHRINKWRAP")
        self.wrap.wrap_method = "NEAREST_SURFACEPOINT"
        self.wrap.offset = SURFACE_OFFSET

    def place(self, host: Any, rng: np.random.Generator, facing: np.ndarray | None = None,
              along: np.ndarray | None = None) -> DefectChange:
        """Show the decal at a random point of ``host`` (facing the camera position ``facing``),
        its length along the surface direction nearest to ``along`` (random when None)."""
        from mathutils import Matrix  # bpy's; only importable inside a render worker

        point, normal = sample_surface_point(self.bp, host, rng, facing)
        self.obj.data = self.meshes[int(rng.integers(len(self.meshes)))]
        size = float(rng.uniform(*self.size))
        self.obj.scale = (size * rng.uniform(*self.elongation), size, 1.0)
        if along is None:
            spin = rng.uniform(0, 2 * math.pi)
            helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
            along = math.cos(spin) * helper + math.sin(spin) * np.cross(normal, helper)
        x_axis = along - normal * np.dot(along, normal)
        if np.linalg.norm(x_axis) < 1e-6:  # ``along`` is the normal itself (an end cap): any tangent
            x_axis = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
        x_axis /= np.linalg.norm(x_axis)
        rotation = np.column_stack([x_axis, np.cross(normal, x_axis), normal])
        self.obj.rotation_euler = Matrix(rotation.tolist()).to_euler()
        self.obj.location = tuple(point + normal * SURFACE_OFFSET)
        self.wrap.target = host
        self.obj.hide_render = False

        def undo() -> None:
            self.obj.hide_render = True

        return DefectChange((self.name,), undo, {"size_m": size, "host": host.name})


def sample_surface_point(bp: Any, host: Any, rng: np.random.Generator, facing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted random point (and normal) on ``host``'s evaluated mesh, in world space,
    restricted to triangles that face the position ``facing`` when given."""
    depsgraph = bp.bpy.context.evaluated_depsgraph_get()
    evaluated = host.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        coords = np.empty(len(mesh.vertices) * 3)
        mesh.vertices.foreach_get("co", coords)
        tris = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", tris)
    finally:
        evaluated.to_mesh_clear()
    world = np.array(host.matrix_world)
    points = coords.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    triangles = points[tris.reshape(-1, 3)]
    cross = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    areas = np.linalg.norm(cross, axis=1) / 2
    normals = cross / np.maximum(2 * areas, 1e-12)[:, None]
    weights = areas.copy()
    if facing is not None:
        to_camera = np.asarray(facing) - triangles.mean(axis=1)
        cosine = np.einsum("ij,ij->i", normals, to_camera) / np.linalg.norm(to_camera, axis=1)
        weights[cosine < 0.3] = 0.0
    if weights.sum() <= 0:
        weights = areas
    k = int(rng.choice(len(weights), p=weights / weights.sum()))
    u, v = rng.random(2)
    if u + v > 1:
        u, v = 1 - u, 1 - v
    a, b, c = triangles[k]
    return a + u * (b - a) + v * (c - a), normals[k]


def place_variant(variants: list[tuple[Decal, np.ndarray | None]], host: Any, rng: np.random.Generator,
                  facing: np.ndarray) -> DefectChange:
    """Show one of a defect type's decal variants (decal, along-direction or None for random) on
    ``host``, facing the camera position ``facing``."""
    decal, along = variants[int(rng.integers(len(variants)))]
    return decal.place(host, rng, facing=facing, along=along)
