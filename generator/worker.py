"""Rendering images of one scenario inside a worker process (bpy loaded and scene built once).

``SceneRenderer`` is the per-process state; ``worker_main`` is the process entry point that pulls
jobs from a queue, renders and writes them, and reports each record back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
import traceback
from typing import Any

import numpy as np

from mkdata.errors import MkdataError
from mkdata.files import write_png_atomic, write_text_atomic
from mkdata.generator.blender import data_block_ids, load_bproc, purge_orphans, select_device
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob, job_seed_sequence
from mkdata.generator.record import ImageRecord
from mkdata.scenes import camera_response, get_scenario
from mkdata.scenes.base import DefectChange, DefectTarget, SceneSample

MAX_VIEW_TRIES = 20  # re-draws of the scene when no defect target is visible enough
MAX_PLACEMENTS = 5  # re-placements of a defect that turned out invisible, per view
NOISE_THRESHOLD = 0.01  # Cycles adaptive-sampling threshold


class NoVisibleTarget(RuntimeError):
    """No place for the defect was visible after MAX_VIEW_TRIES scene draws."""


class SceneRenderer:
    """Holds bpy, the built scenario and render settings; renders one image per call."""

    def __init__(self, config: RenderConfig, threads: int = 0) -> None:
        self.config = config
        self.bp = load_bproc()
        self.device = select_device(self.bp.bpy, config.device)
        renderer = self.bp.renderer
        self.bp.camera.set_resolution(config.resolution, config.resolution)
        renderer.set_cpu_threads(threads)
        renderer.set_noise_threshold(NOISE_THRESHOLD)
        renderer.set_output_format(enable_transparency=False)
        scenario_cls = get_scenario(config.scenario)
        self.scenario = scenario_cls(self.bp, frozenset(config.factors))
        self.scenario.build()
        renderer.enable_segmentation_output(map_by=["instance", "name"], default_values={"name": "world"})
        self.built_blocks = data_block_ids(self.bp.bpy)  # the scene as built: never purged
        self.min_visible_pixels = max(4, round(2e-4 * config.resolution**2))

    def _render(self, samples: int, denoise: bool, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """One Cycles render: (RGB uint8, instance map, object name → instance id)."""
        self.bp.renderer.set_max_amount_of_samples(samples)
        self.bp.renderer.set_denoiser("INTEL" if denoise else None)
        self.bp.bpy.context.scene.cycles.seed = seed
        data = self.bp.renderer.render()
        ids = {entry["name"]: entry["idx"] for entry in data["instance_attribute_maps"][0]}
        return np.asarray(data["colors"][0])[..., :3], np.asarray(data["instance_segmaps"][0]), ids

    def _footprint(self, segmap: np.ndarray, ids: dict[str, int], names: tuple[str, ...]) -> np.ndarray:
        return np.isin(segmap, [ids[name] for name in names if name in ids])

    def _draw_scene(self, job: ImageJob, scene_rng: np.random.Generator, defect_rng: np.random.Generator, seed: int) -> tuple[
            SceneSample, tuple[np.ndarray, dict[str, int]] | None, DefectTarget | None, DefectChange | None]:
        """Randomise the scene and, for a defective job, apply a defect that is visible.

        Cheap segmentation-only passes (1 sample, no denoise) of the normal state find the visible
        targets and give the footprint of parts that go missing or move; a defect that adds
        geometry (a crack) is checked in the defect state too. An invisible defect is re-placed,
        then the view re-drawn. Returns (sample, normal-state segmentation, target, change).
        """
        for _view in range(MAX_VIEW_TRIES):
            sample = self.scenario.randomise(scene_rng, job.view_split)
            if job.defect_type is None:
                return sample, None, None, None
            segmap, ids = self._render(samples=1, denoise=False, seed=seed)[1:]
            visible = [t for t in self.scenario.defect_targets(job.defect_type)
                       if self._footprint(segmap, ids, t.object_names).sum() >= self.min_visible_pixels]
            for _placement in range(MAX_PLACEMENTS if visible else 0):
                target = visible[int(defect_rng.integers(len(visible)))]
                change = self.scenario.apply_defect(job.defect_type, target, defect_rng, sample.view)
                if self._footprint(segmap, ids, change.affected_objects).sum() >= self.min_visible_pixels:
                    return sample, (segmap, ids), target, change
                defect_segmap, defect_ids = self._render(samples=1, denoise=False, seed=seed)[1:]
                if self._footprint(defect_segmap, defect_ids, change.affected_objects).sum() >= self.min_visible_pixels:
                    return sample, (segmap, ids), target, change
                change.undo()
        raise NoVisibleTarget(f"{job.group} {job.index}: no {job.defect_type} of at least {self.min_visible_pixels} visible pixels "
                              f"in {MAX_VIEW_TRIES} views; at {self.config.resolution}² small defects may need a larger --resolution")

    def render(self, job: ImageJob, apply_defect: bool = True) -> tuple[np.ndarray, np.ndarray | None, ImageRecord]:
        """Render ``job``: (image, mask or None, manifest record).

        With ``apply_defect=False`` a defective job renders the identical scene without its defect
        (used to check masks): the same random draws happen, the defect is undone before the
        final render. Scene and defect draws use separate random streams; the Cycles sampling
        seed is the dataset's. The camera's response (exposure, white balance, defocus, noise) is
        drawn from a third stream and applied alike with or without the defect.
        """
        start = time.perf_counter()
        scene_seq, defect_seq, camera_seq = job_seed_sequence(self.config, job).spawn(3)
        scene_rng, defect_rng, camera_rng = (np.random.default_rng(seq) for seq in (scene_seq, defect_seq, camera_seq))
        cycles_seed = self.config.cycles_seed()
        sample, normal_state, target, change = self._draw_scene(job, scene_rng, defect_rng, cycles_seed)
        if change is not None and not apply_defect:
            change.undo()
            change = None
        try:
            image, segmap, ids = self._render(self.config.samples, self.config.denoise, cycles_seed)
        finally:
            if change is not None:
                change.undo()
        response = camera_response.draw(camera_rng, self.config.camera, self.config.resolution)  # type: ignore[arg-type]
        image = camera_response.apply(image, response, camera_rng)
        mask = None
        if job.defect_type is not None and normal_state is not None:
            affected = change.affected_objects if change is not None else ()
            mask = self._footprint(*normal_state, affected) | self._footprint(segmap, ids, affected)
        factors = self.config.factors
        record = ImageRecord(
            path=str(job.image_path), mask_path=str(job.mask_path) if job.mask_path else None, split=job.split,
            group=job.group, label=int(job.defect_type is not None), defect_type=job.label, index=job.index,
            seed=self.config.seed, camera_radius=sample.view.radius, camera_azimuth=sample.view.azimuth,
            camera_elevation=sample.view.elevation, camera_lens_mm=round(self.bp.bpy.context.scene.camera.data.lens, 3),
            factor_UV="UV" in factors, factor_UB="UB" in factors, factor_US="US" in factors,
            background_id=sample.background_id, surface_id=sample.surface_id,
            defect_target=target.target_id if target is not None else None,
            defect_details=json.dumps(change.details if change is not None else {}),
            defect_pixel_ratio=float(mask.mean()) if mask is not None else 0.0,
            camera_response=json.dumps(response.to_dict()),
            render_seconds=round(time.perf_counter() - start, 3), render_key=self.config.render_key_hash(), device=self.device,
        )
        return image, (mask.astype(np.uint8) * 255 if mask is not None else None), record

    def render_and_write(self, job: ImageJob) -> ImageRecord:
        """Render ``job`` and write mask, image and record (in that order, each atomically)."""
        image, mask, record = self.render(job)
        purge_orphans(self.bp.bpy, keep=self.built_blocks)  # what this image left unused
        release_free_heap()
        root = self.config.dataset_dir
        if mask is not None:
            write_png_atomic(root / job.mask_path, mask)
        write_png_atomic(root / job.image_path, image)
        write_text_atomic(root / job.record_path, json.dumps(record.to_dict(), sort_keys=True))
        (root / job.failure_path).unlink(missing_ok=True)
        return record


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    return getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim(0)``).

    Cycles frees and re-allocates a displaced mesh whenever its shader changes, as the day ground's
    does per image with UB; glibc kept those pages, so a worker's RSS grew by ~290 MiB per 100
    wind_turbine UB images (128², 4 spp), and by ~13 MiB with this call after each image.
    """
    if trim := _malloc_trim():
        trim(0)


def _silence_blender() -> None:
    """Send this process's C-level stdout/stderr (Blender and Cycles chatter) to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def remove_temp_dirs() -> None:
    """Delete this process's Blender and BlenderProc temp folders; the interpreter teardown that
    would delete Blender's is skipped by ``exit_process``, and BlenderProc never deletes its own."""
    bpy = sys.modules.get("bpy")
    utility = sys.modules.get("blenderproc.python.utility.Utility")
    folders = (bpy.app.tempdir if bpy else None, getattr(utility.Utility, "temp_dir", None) if utility else None)
    for folder in filter(None, folders):
        shutil.rmtree(folder, ignore_errors=True)


def exit_process(results: Any | None = None) -> None:
    """Leave a process that imported bpy: flush ``results``, then skip interpreter teardown,
    where the bpy module segfaults (exit code -11 measured with bpy 4.2)."""
    remove_temp_dirs()
    if results is not None:
        results.close()
        results.join_thread()
    sys.stdout.flush()
    os._exit(0)


def worker_main(config: RenderConfig, threads: int, recycle_after: int, jobs: Any, results: Any) -> None:
    """Process entry: render jobs from ``jobs`` until a None sentinel or ``recycle_after`` images.

    Stops, too, once the parent process is gone (killed by a signal, it cannot stop its workers).
    Puts ("done", record), ("failed", job, traceback text), ("fatal", None, traceback text) when
    the scene cannot be built, or ("recycle", None) on ``results``.
    """
    _silence_blender()
    signal.signal(signal.SIGTERM, lambda *_: exit_process())  # the pool stops idle workers this way
    try:
        _serve(config, threads, recycle_after, jobs, results)
    finally:
        exit_process(results)


def _serve(config: RenderConfig, threads: int, recycle_after: int, jobs: Any, results: Any) -> None:
    try:
        renderer = SceneRenderer(config, threads)
    except MkdataError as error:  # bad input only a render process can see (an absent device)
        results.put(("bad_input", None, str(error)))
        return
    except Exception:  # noqa: BLE001 - the parent stops the run with this text
        results.put(("fatal", None, traceback.format_exc()))
        return
    parent = multiprocessing.parent_process()
    for _count in range(recycle_after):
        job = jobs.get()
        if job is None or (parent is not None and not parent.is_alive()):
            return  # the sentinel, or the run was killed (no orphan renders the rest of the queue)
        try:
            results.put(("done", renderer.render_and_write(job)))
        except Exception:  # noqa: BLE001 - reported to the parent, which decides
            text = traceback.format_exc()
            write_text_atomic(config.dataset_dir / job.failure_path, text)  # for `mkdata status`
            results.put(("failed", job, text))
    results.put(("recycle", None))
