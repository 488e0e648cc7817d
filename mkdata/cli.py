"""The `mkdata` command line (typer). Each command's logic lives in its package; this wires it."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mkdata.errors import BadInput, MkdataError, require_modules

app = typer.Typer(
    help="mkdata: render MIAD-style inspection datasets, contaminate them, benchmark detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
THIRD_PARTY_WARNERS = ("timm", "anomalib", "torch", "torchvision", "lightning")
WHOLE_CELL = 32  # cells up to this long (names, numbers) are never split across lines
PIPED_WIDTH = 200


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit non-zero."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an MkdataError raised inside into its one-line message and exit code."""
    try:
        yield
    except MkdataError as error:
        fail(str(error), error.exit_code)


def print_table(title: str, header: list[str], rows: list[list[str]], numeric: Collection[str] = ()) -> None:
    """Print a table without cutting any cell: short cells (names, numbers) are never split, long
    text wraps in a narrow terminal, and piped output is as wide as the table needs up to
    PIPED_WIDTH (rich would assume 80 columns)."""
    view = Table(title=title)
    for k, name in enumerate(header):
        longest = max([len(name)] + [len(row[k]) for row in rows])
        view.add_column(name, justify="right" if name in numeric else "left", overflow="fold",
                        min_width=longest if longest <= WHOLE_CELL else None)
    for row in rows:
        view.add_row(*row)
    console = Console()
    if not console.is_terminal:
        natural = console.measure(view, options=console.options.update_width(100_000)).maximum
        console = Console(width=max(80, min(natural, PIPED_WIDTH)))
    console.print(view)


def quiet_library_deprecations() -> None:
    """Hide FutureWarnings that third-party libraries (timm, anomalib, torch) raise about their
    own deprecations on import: a user of mkdata can do nothing about them."""
    for library in THIRD_PARTY_WARNERS:
        warnings.filterwarnings("ignore", category=FutureWarning, module=rf"{library}(\.|$)")


def progress_display(quiet: bool) -> Progress:
    """The progress bar every long command shows: count, a state text, elapsed time and ETA."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    return Progress(*columns, disable=quiet)


def parse_scenarios(text: str) -> list[str]:
    """'all' / 'a,b' → scenario names; unknown names raise BadInput with the valid list."""
    from mkdata.scenes import scenario_names

    valid = scenario_names()
    if text.strip().lower() == "all":
        return valid
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise BadInput(f"unknown scenario {', '.join(unknown) or repr(text)}; valid scenarios: {', '.join(valid)} (or 'all')")
    return list(dict.fromkeys(names))


@app.command()
def miad(
    scenario: Annotated[str, typer.Option(help="Scenario name, comma-separated names, or 'all'.")] = "nut_bolt",
    out: Annotated[Path, typer.Option(help="Output root; each scenario goes to OUT/<scenario>/ (MVTec AD layout).")] = Path("data"),
    preset: Annotated[str, typer.Option(help="Size preset: 'default' (~5 min on 2 cores) or 'paper' (MIAD: 10000 train, 2500+2500 test, 512²).")] = "default",
    train: Annotated[Optional[int], typer.Option(help="Normal training images (preset: 60 / 10000).")] = None,
    test_good: Annotated[Optional[int], typer.Option(help="Normal test images (preset: 20 / 2500).")] = None,
    test_bad: Annotated[Optional[int], typer.Option(help="Defective test images, spread evenly over defect types (preset: 30 / 2500).")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Image width = height in pixels (preset: 256 / 512).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Cycles samples per pixel (preset: 16 / 32).")] = None,
    denoise: Annotated[bool, typer.Option(help="Denoise renders with OpenImageDenoise.")] = True,
    factors: Annotated[Optional[str], typer.Option(help="Uncontrolled factors, e.g. 'UV,UB'; 'none' = controlled baseline. (default: all the scenario has)")] = None,
    seed: Annotated[int, typer.Option(help="Dataset seed; image i depends only on (scenario, split, i, seed, settings).")] = 0,
    workers: Annotated[int, typer.Option(help="Local render worker processes (cores are split between them).")] = 1,
    shard: Annotated[Optional[str], typer.Option(help="Render only slice I of N ('I/N', 0-based), for job arrays.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip images already complete on disk; --no-resume deletes the scenario folder and starts over.")] = True,
    recycle_after: Annotated[int, typer.Option(help="Restart a worker process after this many images (bounds memory).")] = 500,
    normal_only: Annotated[bool, typer.Option(help="Training images only (no test split, no defects, no masks): big normal sets.")] = False,
    contamination_pool: Annotated[int, typer.Option(help="Also render N defective images under training conditions into OUT/<scenario>_pool (for `mkdata contaminate`).")] = 0,
    device: Annotated[str, typer.Option(help="Cycles device: auto (a GPU when Cycles sees one), cpu, cuda or optix.")] = "auto",
    camera: Annotated[str, typer.Option(help="Camera response: 'realistic' (per-image exposure, white balance, slight defocus, sensor noise) or 'ideal' (the render as is).")] = "realistic",
    backend: Annotated[str, typer.Option(help="'local' worker processes, or 'ray' tasks on a Ray cluster (output on a shared filesystem).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")] = None,
    chunk_size: Annotated[int, typer.Option(help="Images per Ray task (one long-lived render process each).")] = 50,
    task_cpus: Annotated[int, typer.Option(help="CPU cores (Cycles threads) per Ray task.")] = 2,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary.")] = False,
) -> None:
    """Render MIAD-style datasets (images, masks, manifest) that anomalib's MVTecAD/Folder load."""
    from mkdata.generator.config import RenderConfig, parse_shard
    from mkdata.generator.runner import Backend, RenderProgress, render_scenario

    failed = 0
    with user_errors(), progress_display(quiet) as progress:
        where = Backend(backend, workers, recycle_after, ray_address, chunk_size, task_cpus)
        shard_range = parse_shard(shard)
        configs = [
            RenderConfig.from_preset(name, out, preset, n_train=train, n_test_good=0 if normal_only else test_good,
                                     n_test_bad=0 if normal_only else test_bad, resolution=resolution, samples=samples,
                                     factors=factors, seed=seed, denoise=denoise, device=device, camera=camera)
            for name in parse_scenarios(scenario)
        ]
        if contamination_pool:
            configs = [c for config in configs for c in (config, config.pool_config(contamination_pool))]
        for config in configs:
            task = progress.add_task(config.dataset_dir.name, total=None, state="")

            def show(state: RenderProgress, task: int = task) -> None:
                progress.update(task, total=state.total, completed=state.done + state.failed)
                speed = progress.tasks[task].speed
                progress.update(task, state=f"{speed * 60:.1f} img/min" if speed else "")

            summary = render_scenario(config, where, shard_range, resume, show)
            failed += len(summary.failures)
            for job, text in summary.failures:
                err.print(f"[red]failed[/] {config.dataset_dir.name} {job.image_path}:", highlight=False)
                err.print(text, markup=False, highlight=False, soft_wrap=True)
            if not quiet:
                progress.console.print(f"{config.dataset_dir.name}: {summary.rendered} rendered, {summary.skipped} already done, "
                                       f"{len(summary.failures)} failed → {config.dataset_dir}")
    if failed:
        fail(f"{failed} image(s) failed; rerun the same command to retry them", code=1)


@app.command()
def status(
    dataset: Annotated[Path, typer.Argument(help="A dataset folder (OUT/<scenario>), finished or being rendered.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Done / failed / missing images per split and defect type; the rate and ETA of a run going on."""
    import dataclasses
    import json

    from mkdata.generator.inventory import dataset_status

    with user_errors():
        state = dataset_status(dataset)
    if json_output:
        typer.echo(json.dumps(dataclasses.asdict(state), indent=2))
        return
    counts = ["planned", "done", "failed", "missing"]
    rows = [[group.split, group.defect_type, *(str(getattr(group, name)) for name in counts)] for group in state.groups]
    print_table(f"status: {dataset}", ["split", "defect type", *counts], rows, numeric=set(counts))
    if state.running:
        rate = f"{state.images_per_minute:.1f} images/min" if state.images_per_minute else "no image finished yet"
        eta = f", ETA {state.eta_s / 60:.0f} min" if state.eta_s is not None else ""
        Console().print(f"a run is going on: {rate}{eta}")


@app.command()
def merge(
    dataset: Annotated[Path, typer.Argument(help="A dataset folder (OUT/<scenario>) that shards rendered into.")],
) -> None:
    """Check every planned image (record, image and mask present, PNGs decode) and rebuild the
    manifest and dataset.json; exit 1 if anything is missing (rerun `mkdata miad` to render it)."""
    from mkdata.generator.inventory import merge as merge_dataset

    with user_errors():
        report = merge_dataset(dataset)
    for label, paths in (("missing", report.missing), ("corrupt (record removed)", report.corrupt),
                         ("duplicate record", report.duplicates)):
        for path in paths:
            err.print(f"[red]{label}[/] {escape(path)}", highlight=False, soft_wrap=True)
    Console().print(f"{report.complete} of {report.planned} images complete → {dataset / 'manifest.parquet'}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def contaminate(
    src: Annotated[Path, typer.Argument(help="A dataset folder in the MVTec AD layout (OUT/<scenario>, or MVTec AD's own).")],
    ratio: Annotated[float, typer.Option(help="Share of anomalous images in the new training set, 0 to 0.5 (the IRP paper's range).")],
    out: Annotated[Path, typer.Option(help="The new dataset folder (must not exist, or be empty).")],
    kind: Annotated[Optional[str], typer.Option(help="pool (SRC's contamination pool), test-defects (moved from the test set) or synthetic (CutPaste / Perlin patches); default: pool if SRC has one, else test-defects.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw; the same seed gives the same files.")] = 0,
    mode: Annotated[str, typer.Option(help="replace: keep SRC's training-set size; add: keep every normal image.")] = "replace",
    overlap: Annotated[bool, typer.Option(help="test-defects: keep the moved defects in the test set too (SoftPatch's option).")] = False,
) -> None:
    """Write a contaminated copy of a dataset (hard links); which training images are anomalous
    goes to contamination.json, which detectors never read."""
    from mkdata.benchmark.contaminated_dataset import contaminate_dataset

    with user_errors():
        written = contaminate_dataset(src, ratio, out, kind, seed, mode, overlap)
    shrank = f", test set {written.test_before} → {written.test_after} images" if written.test_removed else ""
    Console().print(f"{written.path}: {written.n_anomalous} of {written.n_train} training images anomalous "
                    f"({100 * written.achieved_ratio:.1f} %, kind {written.kind}, mode {written.mode}){shrank}")


@app.command()
def preview(
    scenario: Annotated[str, typer.Option(help="Scenario to preview.")] = "nut_bolt",
    out: Annotated[Optional[Path], typer.Option(help="Contact sheet PNG (default: preview_<scenario>.png).")] = None,
    resolution: Annotated[int, typer.Option(help="Tile size in pixels.")] = 192,
    samples: Annotated[int, typer.Option(help="Cycles samples per pixel.")] = 8,
    factors: Annotated[Optional[str], typer.Option(help="Uncontrolled factors as for `mkdata miad` (default: all the scenario has).")] = None,
    seed: Annotated[int, typer.Option(help="Dataset seed.")] = 0,
) -> None:
    """Render a contact sheet: 3 normal images and one per defect type with its mask outlined."""
    from mkdata.generator.blender import check_render_backend
    from mkdata.generator.config import RenderConfig, parse_factors
    from mkdata.generator.preview import write_preview

    with user_errors():
        names = parse_scenarios(scenario)
        if len(names) != 1:
            raise BadInput("preview takes one scenario name")
        name = names[0]
        check_render_backend()
        config = RenderConfig(name, Path("."), 0, 0, 0, resolution, samples, parse_factors(factors, name), seed=seed)
        path = write_preview(config, out or Path(f"preview_{name}.png"))
    Console().print(f"wrote {path}")


@app.command()
def stats(
    root: Annotated[Path, typer.Argument(help="A dataset folder (OUT/<scenario>) or a root holding several.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON records instead of a table.")] = False,
) -> None:
    """Counts per split and defect type, defect-pixel ratios, empty and border-touching masks."""
    from mkdata.generator.stats import dataset_stats

    with user_errors():
        table = dataset_stats(root)
    if json_output:
        typer.echo(table.to_json(orient="records", indent=2))
        return
    percent = {"mean_ratio", "median_ratio", "empty_masks", "border_masks"}

    def cell(column: str, value: object) -> str:
        if column in percent or column == "vs_miad":
            return "" if np.isnan(value) else f"{100 * value:.3f}%" if column in percent else f"{value:.2f}×"
        return str(value)

    rows = [[cell(k, v) for k, v in zip(table.columns, row)] for row in table.itertuples(index=False)]
    print_table(f"dataset statistics: {root}", list(table.columns), rows, numeric=percent | {"images", "vs_miad"})


bench_app = typer.Typer(help="Benchmark detectors on datasets (see bench.example.yaml).", add_completion=False)
app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    config: Annotated[Optional[Path], typer.Option(help="YAML/TOML grid (datasets, detectors, wrappers, noise, seeds, limits).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (config's 'output', default bench_out).")] = None,
    data: Annotated[Path, typer.Option(help="Where to look for datasets when the config lists none.")] = Path("data"),
    jobs: Annotated[int, typer.Option(help="Cells run at once (each in its own process); one per GPU when GPUs are present.")] = 1,
    backend: Annotated[str, typer.Option(help="'local' processes, or 'ray' to spread cells over a Ray cluster.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start or join a local one).")] = None,
    force: Annotated[bool, typer.Option(help="Redo cells that already succeeded.")] = False,
    only: Annotated[Optional[list[str]], typer.Option(help="Run only cells matching KEY=VALUE (repeatable), e.g. detector=padim.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display or table.")] = False,
) -> None:
    """Run every detector on every dataset and noise level; write results, summary.md and report.html."""
    if context.invoked_subcommand is not None:
        return
    with user_errors():
        require_modules(("torch", "anomalib"), "bench", "mkdata bench")
    from mkdata.bench_data import check_scenarios, render_dataset
    from mkdata.benchmark.config import BenchConfig, load_config
    from mkdata.benchmark.report import failed_lines, miad_table, write_report
    from mkdata.benchmark.runner import BenchCounts, prepare, run_bench, select, with_output

    with user_errors(), progress_display(quiet) as progress:
        settings = with_output(load_config(config) if config else BenchConfig(), out)
        check_scenarios(settings)
        cells = select(prepare(settings, data, render_dataset), only or [])
        task = progress.add_task("cells", total=len(cells), state="")

        def show(counts: BenchCounts) -> None:
            progress.update(task, completed=counts.skipped + counts.succeeded + counts.failed,
                            state=f"{counts.succeeded} ok, {counts.failed} failed, {counts.running} running")

        summary = run_bench(settings, cells, jobs, backend, force, ray_address, show)
    results = write_report(settings.output)
    if not quiet:
        ok = results[results.status == "ok"]
        if not ok.empty:
            typer.echo(miad_table(ok).to_markdown())  # plain text: rich would re-wrap the table at 80 columns
        Console().print(f"{summary.succeeded} cells ok, {summary.failed} failed, {summary.skipped} already done → {settings.output}")
    if summary.failed:
        for line in failed_lines(results):
            err.print(f"[red]failed[/] {escape(line)}", highlight=False)
        raise typer.Exit(1)


@bench_app.command("compare")
def bench_compare(
    a: Annotated[Path, typer.Argument(help="First results folder.")],
    b: Annotated[Path, typer.Argument(help="Second results folder.")],
) -> None:
    """Metric differences (B − A) for the cells two result folders share."""
    from mkdata.benchmark.report import compare

    table = compare(a, b)
    if table.empty:
        fail("the two result folders share no successful cell")
    typer.echo(table.to_markdown(index=False, floatfmt="+.3f"))


@app.command()
def detectors(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every detector: description, default parameters, pixel map?, needs pretrained weights?"""
    import json

    from mkdata.benchmark.detectors.registry import describe, detector_names

    entries = [describe(name) for name in detector_names()]
    if json_output:
        typer.echo(json.dumps(entries, indent=2, default=str))
        return
    rows = [[entry["name"], entry["description"], "yes" if entry["yields_map"] else "no", "needs" if entry["needs_weights"] else "-",
             ", ".join(f"{k}={v}" for k, v in entry["defaults"].items())] for entry in entries]
    print_table("mkdata detectors", ["name", "description", "pixel map", "weights", "defaults"], rows)


@app.command()
def weights(
    config: Annotated[Optional[Path], typer.Option(help="A bench config whose detectors to check (default: mkdata bench's defaults).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Check every registered detector (builds each once, at random).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Where each backbone's weights would come from on this machine now (file, packaged, cache,
    download, missing, random), and how to make a missing one available offline; exit 1 if any is missing."""
    import dataclasses
    import json

    with user_errors():
        require_modules(("torch",), "bench", "mkdata weights")
        from mkdata.benchmark.config import BenchConfig, load_config
        from mkdata.benchmark.detectors.registry import detector_names
        from mkdata.benchmark.detectors.weight_sources import weight_sources

        specs = detector_names() if every else [(d.name, d.params) for d in (load_config(config) if config else BenchConfig()).detectors]
        sources = weight_sources(specs)
    if json_output:
        typer.echo(json.dumps([dataclasses.asdict(source) for source in sources], indent=2))
        return
    rows = [[source.backbone, source.status, source.path, ", ".join(source.detectors), source.remedy] for source in sources]
    print_table("weights on this machine", ["backbone", "from", "path", "detectors", "to make it available offline"], rows)
    if any(source.status == "missing" for source in sources):
        raise typer.Exit(1)


@app.callback()
def main() -> None:
    """mkdata: render MIAD-style inspection datasets, contaminate them, benchmark detectors."""
    quiet_library_deprecations()


if __name__ == "__main__":
    app()
