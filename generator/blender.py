"""Loads bpy and BlenderProc's API inside the current (worker) process, without BlenderProc's launcher.

BlenderProc's package ``__init__`` refuses to run outside ``blenderproc run`` (which downloads
Blender and pip-installs into Blender's Python). We register the package module by hand so
``blenderproc.api.*`` and ``blenderproc.python.*`` import normally, and replace ``bproc.init()``
by its steps minus the UI-language line (the bpy wheel has no language enum).

Import this only in render worker processes, never in a process that holds torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import types
from functools import cache
from pathlib import Path
from typing import Any

from mkdata.errors import BadInput, require_modules


def check_render_backend() -> None:
    """Raise ExtraMissing with an install hint when bpy or BlenderProc is absent (cheap)."""
    require_modules(("bpy", "blenderproc"), "render", "rendering")


@cache
def load_bproc(temp_dir: str | None = None) -> types.SimpleNamespace:
    """Import bpy + BlenderProc's API once per process and initialise the scene like ``bproc.init()``.

    Returns a namespace with the API modules (``camera``, ``object``, ``material``, ``renderer``,
    ``types``, ``utility``, ``lighting``, ``math``, ``world``) and ``bpy`` itself.
    """
    check_render_backend()
    os.environ["OPENCV_IO_ENABLE_OPENEXR"] = "1"  # BlenderProc reads its segmentation maps as EXR
    spec = importlib.util.find_spec("blenderproc")
    assert spec is not None and spec.submodule_search_locations is not None
    if "blenderproc" not in sys.modules:
        package = types.ModuleType("blenderproc")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__spec__ = spec
        sys.modules["blenderproc"] = package
    import bpy

    utility_module = importlib.import_module("blenderproc.python.utility.Utility")
    work_dir = Path(temp_dir or tempfile.mkdtemp(prefix="mkdata_bproc_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    utility_module.Utility.temp_dir = str(work_dir)

    api = types.SimpleNamespace(bpy=bpy, temp_dir=work_dir)
    for name in ("camera", "object", "material", "renderer", "types", "utility", "lighting", "math", "world"):
        setattr(api, name, importlib.import_module(f"blenderproc.api.{name}"))
    _init_scene()
    return api


def _init_scene() -> None:
    """``blenderproc.python.utility.Initializer.init`` without the UI-language step."""
    import bpy

    initializer = importlib.import_module("blenderproc.python.utility.Initializer")
    renderer_utility = importlib.import_module("blenderproc.python.renderer.RendererUtility")
    global_storage = importlib.import_module("blenderproc.python.utility.GlobalStorage").GlobalStorage

    initializer.clean_up(clean_up_camera=True)
    bpy.context.scene.render.engine = "CYCLES"
    renderer_utility.set_render_devices()
    initializer._Initializer.set_default_parameters()
    global_storage.add("bproc_init_complete", True)


class DeviceMissing(BadInput):
    """The Cycles device asked for is not on this machine."""


def select_device(bpy: Any, device: str) -> str:
    """Make Cycles render on ``device`` ('auto', 'cpu', 'cuda', 'optix'); returns the one in use.
    'auto' takes a GPU when Cycles sees one; an absent GPU type raises DeviceMissing (never a
    silent fall-back to the CPU)."""
    renderer_utility = importlib.import_module("blenderproc.python.renderer.RendererUtility")
    if device == "cpu":
        renderer_utility.set_render_devices(use_only_cpu=True)
        return "cpu"
    preferences = bpy.context.preferences.addons["cycles"].preferences
    if device != "auto":
        if not [d for d in preferences.get_devices_for_type(device.upper()) if d.type == device.upper()]:
            raise DeviceMissing(f"--device {device}: Cycles sees no {device.upper()} device on this machine; "
                                "use --device cpu or auto")
        renderer_utility.set_render_devices(desired_gpu_device_type=device.upper())
    else:
        renderer_utility.set_render_devices()
    used = preferences.compute_device_type if bpy.context.scene.cycles.device == "GPU" else "NONE"
    return "cpu" if used == "NONE" else used.lower()


def data_block_ids(bpy: Any) -> frozenset[int]:
    """The session ids of every data block (mesh, image, material, …) now in ``bpy.data``."""
    return frozenset(block.session_uid for block in bpy.data.user_map())


def purge_orphans(bpy: Any, keep: frozenset[int]) -> int:
    """Delete data blocks that nothing uses and that are not in ``keep`` (ids from
    ``data_block_ids``), repeating for the blocks only those used; returns how many went.

    Unlike ``bpy.data.orphans_purge`` this spares what a scenario built once and holds in Python
    while nothing uses it (decal shapes not shown now); a block a scenario creates later and keeps
    sets ``use_fake_user``.
    """
    removed = 0
    while orphans := [block for block in bpy.data.user_map() if block.users == 0 and block.session_uid not in keep]:
        bpy.data.batch_remove(orphans)
        removed += len(orphans)
    return removed
