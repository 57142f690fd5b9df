"""The ``imcsr-live`` command. Thin: parse arguments, load config, call the packages, report.

Errors the app raises on purpose (:class:`imcsr_live.errors.ImcsrError`) become one line on stderr and a
non-zero exit status; anything else is a bug and keeps its traceback (also written to the log file).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from imcsr_live.config import MAX_RAW_SIDE
from imcsr_live.errors import ImcsrError, InputDataError
from imcsr_live.logging_setup import setup_logging
from imcsr_live.rigs import default_rig

if TYPE_CHECKING:
    from imcsr_live.pipeline.training_data import TimepointDone
    from imcsr_live.recon.reconstructor import SRFrame
    from imcsr_live.runs import RunOptions
    from imcsr_live.train.eval_report import EvalReport
    from imcsr_live.train.trainer import Progress as TrainProgress

log = logging.getLogger("imcsr_live.cli")
console = Console(stderr=True)

app = typer.Typer(
    name="imcsr-live",
    help="Instant multicolour super-resolution for a live SIM microscope.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Memory of the synthetic microscope per camera pixel (truth grid 2x finer per side, several structures, nine
#: frames, FFT work arrays): about 210 MB measured at 512 x 512.
SYNTH_BYTES_PER_PIXEL = 1024

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="rig TOML, e.g. hardware_configs/simulated.toml")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="replace existing output files (default: refuse; nothing is overwritten)")
]


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="more output (-vv: debug)")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors")] = False,
) -> None:
    path = setup_logging(verbose, quiet)
    log.debug("command line: %s (log file %s)", " ".join(sys.argv), path)


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """The progress bar every long command uses (stderr, so stdout stays clean for results).

    It stays on screen after a run; when the run fails it is removed, so the error is the only line left.
    """
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with bar:
        try:
            yield bar
        except BaseException:
            bar.live.transient = True
            raise


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Versions, Qt binding, torch devices, available engines and Micro-Manager adapters."""
    from imcsr_live.engine.model_source import shipped_models
    from imcsr_live.sysinfo import collect_info
    from imcsr_live.ui.window_check import check_window

    data = collect_info()
    data["window"] = check_window().describe()
    data["models"] = [m.summary() for m in shipped_models()]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if key == "models":
            typer.echo("models (shipped; pass --model NAME):")
            typer.echo(_models_table(value) if value else "  none")  # type: ignore[arg-type]
            continue
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for name, ver in value.items():
                typer.echo(f"  {name:<14} {ver or '-'}")
        elif isinstance(value, list):
            typer.echo(f"{key}: {', '.join(value) if value else 'none found'}")
        else:
            typer.echo(f"{key}: {value}")


def _models_table(models: list[dict[str, Any]]) -> str:
    rows = [
        f"  {m['name']:<22} {', '.join(m['structures']):<30} {m['parameters'] / 1e6:6.2f} M params  "
        f"{m['runs_on'].upper():<3}  uncertainty {'yes' if m['uncertainty'] else 'no ':<3}  world {m['world']}"
        for m in models
    ]
    return "\n".join(rows)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """The models shipped with the app: name, structures, size, CPU/GPU, uncertainty head, training world."""
    from imcsr_live.engine.model_source import shipped_models

    found = [m.summary() for m in shipped_models()]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    elif found:
        typer.echo(_models_table(found))
    else:
        typer.echo("no models shipped (imcsr_live/weights/ is empty); pass --model NAME to the commands")


def _check_world(world: str) -> None:
    from imcsr_live.errors import InputDataError
    from imcsr_live.synth.world import WORLDS

    if world not in WORLDS:
        raise InputDataError(f"unknown --world {world!r}; choose one of {', '.join(WORLDS)}")


def _default_model(requested: Path | None, structures: list[str], engine_kind: str) -> Path | None:
    """``requested``, or the shipped model for ``structures`` chosen for where ``engine_kind`` runs (logged)."""
    if requested is not None:
        return requested
    from imcsr_live.engine.model_source import choose_default_model

    stem, reason = choose_default_model(structures, engine_kind)
    if stem is not None:
        log.info("model %s (%s)", stem.name, reason)
        console.print(f"model {stem.name} ({reason})", highlight=False)
    return stem


@app.command()
def synth(
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="raw time-lapse OUT.tif (T, 9, Y, X) uint16")],
    frames: Annotated[int, typer.Option("--frames", min=1, help="number of timepoints")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="specimen + noise seed")] = 0,
    photons: Annotated[float, typer.Option("--photons", help="photons at the brightest widefield pixels")] = 1000.0,
    size: Annotated[
        int, typer.Option("--size", min=16, max=MAX_RAW_SIDE, help="camera frame size in pixels (square)")
    ] = 512,
    world: Annotated[
        str,
        typer.Option("--world", help="synthetic cells: default, randomised, independent or heldout (see docs/worlds/)"),
    ] = "default",
) -> None:
    """Simulate a raw SIM time-lapse plus per-structure ground truth (OUT.gt.tif)."""
    from imcsr_live.config import check_frame_budget, load_rig_config

    rig = load_rig_config(config)
    check_frame_budget((size, size), SYNTH_BYTES_PER_PIXEL, "synth --size")
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputDataError(f"output {output} must end in .tif or .tiff (it is written as OME-TIFF)")
    from imcsr_live.synth.export import write_synthetic_timelapse
    from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

    _check_world(world)
    microscope = SyntheticMicroscope(
        rig, WorldSettings(raw_shape=(size, size), photons=photons, seed=seed, world=world)
    )
    with progress_bar() as bar:
        task = bar.add_task("simulating", total=frames, status="")

        def advance(t: int, seconds: float) -> None:
            bar.update(task, completed=t + 1, status=f"{seconds:.2f} s/timepoint")

        paths = write_synthetic_timelapse(microscope, output, frames, on_timepoint=advance)
    for p in paths:
        typer.echo(str(p))


DEFAULT_DEMO_CONFIG = default_rig("simulated")  # the shipped copy of hardware_configs/simulated.toml
ValidateEveryOption = Annotated[
    int | None,
    typer.Option(
        "--validate-every", min=1, max=100_000, metavar="K",
        help="multi-colour sample: every K-th timepoint also image each structure with its own preset and show "
        "and record the per-channel PCC and error map (needs a preset per structure; see README)",
    ),
]  # fmt: skip


@app.command()
def demo(
    headless: Annotated[bool, typer.Option("--headless", help="no window; print progress and a summary")] = False,
    frames: Annotated[int | None, typer.Option("--frames", min=1, help="timepoints (GUI: until closed)")] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", min=0.0, help="seconds per timepoint (0: free-run)")
    ] = None,
    record: Annotated[Path | None, typer.Option("--record", help="record to this path (see README)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="specimen + noise seed (3: a balanced cell)")] = 3,
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="save the window as PNG")] = None,
    size: Annotated[
        int, typer.Option("--size", min=64, max=MAX_RAW_SIDE, help="camera frame size (square); SR is twice that")
    ] = 256,
    photons: Annotated[float, typer.Option("--photons")] = 1000.0,
    model: Annotated[
        Path | None, typer.Option("--model", help="checkpoint DIR/NAME or shipped NAME (default: shipped, see info)")
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="rig TOML")] = DEFAULT_DEMO_CONFIG,
    world: Annotated[
        str,
        typer.Option(
            "--world",
            help="synthetic cells: default, randomised (the training world's many morphologies), independent "
            "(a separately written world; the shipped model trains on some of its cells) or heldout (a third world, "
            "evaluation only)",
        ),
    ] = "default",
    validate_every: ValidateEveryOption = None,
) -> None:
    """The simulated microscope, live: a moving synthetic cell imaged by SIM, reconstructed and separated."""
    from imcsr_live.config import check_frame_budget, load_rig_config
    from imcsr_live.runs import DemoWorld, run_demo

    rig = load_rig_config(config)
    check_frame_budget((size, size), SYNTH_BYTES_PER_PIXEL, "demo --size")
    model = _default_model(model, rig.structure_names, rig.engine.kind)
    options = _run_options(headless, frames, interval, record, screenshot, model, validate_every)
    _check_world(world)
    run_demo(rig, options, DemoWorld(size=size, photons=photons, seed=seed, world=world), typer.echo)


@app.command()
def live(
    config: ConfigOption,
    headless: Annotated[bool, typer.Option("--headless", help="no window; print progress and a summary")] = False,
    frames: Annotated[int | None, typer.Option("--frames", min=1, help="timepoints (GUI: until closed)")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="record to this path (see README)")] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="checkpoint DIR/NAME or shipped NAME (default: shipped, see info)")
    ] = None,
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="save the window as PNG")] = None,
    validate_every: ValidateEveryOption = None,
) -> None:
    """Live IMC-SR on the rig described by a TOML (Micro-Manager or simulated)."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.runs import run_live_pipeline

    rig = load_rig_config(config)
    model = _default_model(model, rig.structure_names, rig.engine.kind)
    options = _run_options(headless, frames, None, record, screenshot, model, validate_every)
    run_live_pipeline(rig, options, typer.echo, f"imcsr-live — {config.name}", progress=_warmup_printer())


def _run_options(
    headless: bool, frames: int | None, interval: float | None, record: Path | None, screenshot: Path | None,
    model: Path | None, validate_every: int | None = None,
) -> RunOptions:  # fmt: skip
    """Shared demo/live option rules: no screen -> headless; headless and screenshots need a frame count."""
    from imcsr_live.runs import RunOptions
    from imcsr_live.ui.window_check import check_window

    window = None if headless else check_window()
    if window is not None and not window.ok:  # Qt would abort the process (exit 134): go on without the window
        console.print(f"the window cannot open: {window.problem}; running headless (QT_QPA_PLATFORM=offscreen "
                      "with --screenshot renders the window anyway)", highlight=False, soft_wrap=True)  # fmt: skip
        headless = True
    if screenshot is not None and frames is None:
        frames = 3
    if headless and frames is None:
        frames = 10
    return RunOptions(headless, frames, interval, record, screenshot, model, validate_every)


def _warmup_printer():
    def progress(message: str, fraction: float) -> None:
        console.print(f"warm-up {fraction * 100:3.0f}%  {message}", highlight=False)

    return progress


@app.command()
def reconstruct(
    raw: Annotated[Path, typer.Argument(help="raw SIM data (.tif, .ome.zarr, .mrc): (9, Y, X) or (T, 9, Y, X)")],
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="SR stack SR.tif (T, 2Y, 2X) float32")],
    params_out: Annotated[
        Path | None, typer.Option("--params-out", help="write the pattern parameters per timepoint (JSON)")
    ] = None,
    otf: Annotated[
        Path | None, typer.Option("--otf", help="measured OTF: .csv/.npy (k cycles/um, value) or bead PSF .tif")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="torch device for the Wiener stage: cpu, cuda")] = "cpu",
    overwrite: OverwriteOption = False,
) -> None:
    """Reconstruct raw SIM data into super-resolved frames, estimating the pattern from the data."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.outputs import refuse_existing, refuse_input_as_output, staged

    rig = load_rig_config(config)
    from imcsr_live.io.otf_file import load_otf
    from imcsr_live.pipeline.offline_recon import reconstruct_file

    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputDataError(f"output {output} must end in .tif or .tiff (it is written as OME-TIFF)")
    finals = [output, *([params_out] if params_out is not None else [])]
    for path in finals:
        refuse_input_as_output(path, [raw])
    refuse_existing(finals, overwrite)
    measured = load_otf(otf, rig.optics.pixel_size_um) if otf is not None else None
    with progress_bar() as bar, staged(*finals) as paths:
        task = bar.add_task("reconstructing", total=None, status="")

        def advance(t: int, total: int, frame: SRFrame) -> None:
            flag = "  LOW CONFIDENCE" if frame.low_confidence else ""
            ms = sum(frame.timings_s.values()) * 1e3
            bar.update(task, completed=t + 1, total=total, status=f"{ms:.0f} ms/timepoint{flag}")

        summary = reconstruct_file(
            raw,
            rig,
            paths[0],
            params_out=paths[1] if params_out else None,
            otf=measured,
            device=device,
            on_timepoint=advance,
        )
    summary.paths = finals
    if summary.low_confidence:
        console.print(
            f"warning: low-confidence parameters at timepoints {summary.low_confidence} (see --params-out notes); "
            "check focus, pattern contrast and exposure"
        )
    for p in summary.paths:
        typer.echo(str(p))


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", help="checkpoint NAME (NAME.safetensors + NAME.json)")],
    engine: Annotated[str, typer.Option("--engine", help="onnx or tensorrt")] = "onnx",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or bf16 (baked into the graph)")] = "fp16",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: beside model)")] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="SR frame size the plan is tuned for")] = 1024,
    min_size: Annotated[int | None, typer.Option("--min-size", help="smallest frame a plan accepts")] = None,
    max_size: Annotated[int | None, typer.Option("--max-size", help="largest frame a plan accepts")] = None,
) -> None:
    """Export a model to ONNX (checked against torch) or build its TensorRT plan (cached for the live app)."""
    from imcsr_live.engine.exporting import export_model
    from imcsr_live.engine.model_source import load_model

    source = load_model(model)
    with progress_bar() as bar:
        task = bar.add_task("export", total=1.0, status="")
        _files, summary = export_model(
            source,
            engine,
            precision,
            output=output,
            default_dir=Path(model).parent,
            size=size,
            min_size=min_size,
            max_size=max_size,
            progress=lambda msg, frac: bar.update(task, completed=frac, status=msg),
        )
        bar.update(task, completed=1.0, status="done")
    typer.echo(summary)


@app.command()
def benchmark(
    engine: Annotated[list[str] | None, typer.Option("--engine", help="engine kind(s); default: all here")] = None,
    size: Annotated[list[int] | None, typer.Option("--size", help="SR frame size(s), square; default 512")] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or bf16")] = "fp16",
    network: Annotated[
        str | None, typer.Option("--network", help="random network preset: paper, paper-local, cpu, tiny")
    ] = None,
    model: Annotated[Path | None, typer.Option("--model", help="checkpoint to time instead of --network")] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="timed frames per row (median reported)")] = 5,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads (torch + onnxruntime)")] = None,
    as_json: Annotated[Path | None, typer.Option("--json", help="also write the results here")] = None,
    stage: Annotated[
        str, typer.Option("--stage", help="engine: separation engines; recon: SIM reconstruction (9 raw -> SR)")
    ] = "engine",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="rig TOML for --stage recon (default: simulated rig)")
    ] = None,
) -> None:
    """Time the inference engines (ms/frame, frames/s, peak memory) or, with --stage recon, the reconstruction."""
    if stage not in ("engine", "recon"):
        raise InputDataError(f"--stage must be engine or recon (got {stage!r})")
    if stage == "recon":
        _benchmark_recon(size or [1024], frames, threads, config or DEFAULT_DEMO_CONFIG, as_json)
        return
    from imcsr_live.engine.bench import auto_hint, format_table, run_benchmark
    from imcsr_live.engine.model_source import load_model, random_model
    from imcsr_live.engine.select import KINDS, engine_precision, unavailable_reason

    if network is None:  # the paper size where a GPU can run it, the CPU demo size elsewhere
        import torch

        network = "paper" if torch.cuda.is_available() else "cpu"
    source = load_model(model) if model is not None else random_model(network)
    options: dict[str, dict[str, object]] = {}
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
        options["onnxruntime"] = {"threads": threads}
    kinds = engine or [k for k in KINDS if unavailable_reason(k) is None]
    results = []
    with progress_bar() as bar:
        task = bar.add_task("benchmark", total=len(kinds) * len(size or [512]), status="")
        for kind in kinds:
            for n in size or [512]:
                device = "cuda" if kind in ("tensorrt", "torch-cuda") else "cpu"
                prec = engine_precision(kind, precision, device) if engine is None else precision
                label = network if model is None else source.name
                status = lambda msg, frac: bar.update(task, status=msg)  # noqa: E731
                results.append(
                    run_benchmark(kind, source, prec, n, frames, network=label, progress=status, options=options)
                )
                bar.advance(task)
    typer.echo(format_table(results))
    hint = auto_hint(results) if engine is None and len({r.engine for r in results}) > 1 else None
    if hint is not None:
        typer.echo(hint)
    if as_json is not None:
        as_json.write_text(json.dumps([r.as_dict() for r in results], indent=2), encoding="utf-8")
        typer.echo(f"wrote {as_json}")


def _benchmark_recon(sizes: list[int], repeats: int, threads: int | None, config: Path, as_json: Path | None) -> None:
    """``benchmark --stage recon``: SR sizes (raw = SR / 2) on the CPU and, when present, the GPU."""
    import torch

    from imcsr_live.config import load_rig_config
    from imcsr_live.synth.recon_bench import format_recon_table, run_recon_benchmark

    rig = load_rig_config(config)
    if threads is not None:
        torch.set_num_threads(threads)
    bad = [n for n in sizes if n % 4 or n < 128]
    if bad:
        raise InputDataError(f"--size is the SR frame size for --stage recon: a multiple of 4, >= 128 (got {bad})")
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    results = []
    with progress_bar() as bar:
        task = bar.add_task("benchmark recon", total=len(devices) * len(sizes), status="")
        for device in devices:
            for n in sizes:
                bar.update(task, status=f"{device} {n // 2}^2 x9 -> {n}^2")
                results.append(run_recon_benchmark(rig, n // 2, device=device, repeats=repeats))
                bar.advance(task)
    typer.echo(format_recon_table(results))
    if as_json is not None:
        as_json.write_text(json.dumps([r.as_dict() for r in results], indent=2), encoding="utf-8")
        typer.echo(f"wrote {as_json}")


@app.command()
def train(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="training TOML, e.g. hardware_configs/train_tiny.toml")
    ],
    resume: Annotated[bool, typer.Option("--resume", help="continue from NAME_last in the output folder")] = False,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            "--max-minutes", min=0.0, help="stop cleanly after this much wall time (checkpointed; then --resume)"
        ),
    ] = None,
) -> None:
    """Train an IMC-SR network (multi-GPU: torchrun --nproc_per_node N -m imcsr_live train -c ...)."""
    import os

    from imcsr_live.train.config import load_train_config
    from imcsr_live.train.trainer import Trainer

    cfg = load_train_config(config)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 shows progress and prints paths
        Trainer(cfg).run(resume=resume, max_minutes=max_minutes)
        return
    with progress_bar() as bar:
        task = bar.add_task("training", total=cfg.train.iterations, status="")

        def show(p: TrainProgress) -> None:
            val = f"  val NRMSE {p.val_nrmse:.4f}" if p.val_nrmse is not None else ""
            bar.update(
                task, completed=p.iteration, status=f"loss {p.loss:.4f}  lr {p.lr:.2g}  {p.it_per_s:.2f} it/s{val}"
            )

        result = Trainer(cfg, on_progress=show).run(resume=resume, max_minutes=max_minutes)
    for stem in (result.best_path, result.last_path):
        typer.echo(f"{stem}.safetensors")
    if result.iterations < cfg.train.iterations:
        typer.echo(
            f"stopped at the {max_minutes:g}-minute limit after {result.iterations} of {cfg.train.iterations} "
            f"iterations; continue with: imcsr-live train -c {config} --resume"
        )


@app.command()
def evaluate(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="'synthetic' (default world; --pipeline adds live-pipeline levels), a synthetic world 'randomised', "
            "'independent' or 'heldout' (cells of that world through the synthetic microscope + real reconstruction, "
            "seeds from 900000000 on, levels '<world> <p> photons'), or a folder ROOT/<Structure>/*.tif|*.mrc",
        ),
    ],
    model: Annotated[
        Path | None, typer.Option("--model", help="checkpoint NAME (NAME.safetensors + NAME.json)")
    ] = None,
    report: Annotated[
        Path, typer.Option("--report", help="folder for metrics.csv/.md, boxplots.png, montage.png")
    ] = Path("report"),
    images: Annotated[int, typer.Option("--images", min=1, help="test images per SNR level")] = 8,
    size: Annotated[int, typer.Option("--size", min=32, help="synthetic test image size (SR pixels)")] = 256,
    photons: Annotated[list[float] | None, typer.Option("--photons", help="synthetic photon levels")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    pooling: Annotated[
        str | None, typer.Option("--pooling", help="override channel-attention pooling: global or local")
    ] = None,
    pool_window: Annotated[
        int | None, typer.Option("--pool-window", min=3, help="local pooling window (default: training patch)")
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="compare methods on the same images instead of --model: repeat LABEL=NAME[,NAME...], e.g. "
            "--compare Single=runs/s_mt,runs/s_er,runs/s_lyso --compare All=runs/all --compare All+TC=runs/tc "
            "(a Single method lists one 1-output model per structure); adds flicker.md/.csv",
        ),
    ] = None,
    flicker_frames: Annotated[
        int, typer.Option("--flicker-frames", min=2, help="--compare: timepoints of the static flicker scenes")
    ] = 8,
    flicker_scenes: Annotated[
        int, typer.Option("--flicker-scenes", min=1, help="--compare: static scenes per level for flicker")
    ] = 4,
    flicker_size: Annotated[
        int, typer.Option("--flicker-size", min=32, help="--compare: flicker scene size (SR pixels)")
    ] = 256,
    pipeline: Annotated[
        bool,
        typer.Option(
            "--pipeline",
            help="--compare, synthetic: add levels whose inputs come from the synthetic microscope (raw 9 frames) "
            "+ the real reconstructor, as in the live pipeline",
        ),
    ] = False,
    pipeline_images: Annotated[
        int | None, typer.Option("--pipeline-images", min=1, help="--pipeline: test images per pipeline level")
    ] = None,
) -> None:
    """Paper metrics (NRMSE, SSIM, PCC) per structure and SNR against a no-separation baseline, with plots.

    With --compare: several methods on the same test images, side-by-side box plots, and the frame-to-frame
    flicker of a static specimen (temporal stability, e.g. All vs All+TC).
    """
    from imcsr_live.errors import InputDataError

    if (model is None) == (not compare):
        raise InputDataError("evaluate needs either --model NAME or --compare LABEL=NAME[,NAME...] (not both)")
    if compare and (pooling or pool_window):
        raise InputDataError("--pooling / --pool-window apply to --model only; drop them with --compare")
    if not compare and (pipeline or pipeline_images):
        raise InputDataError("--pipeline / --pipeline-images need --compare (use --compare NAME=M for one model)")
    with progress_bar() as bar:
        task = bar.add_task("evaluating", total=None, status="")
        test_set: dict[str, Any] = {
            "photons": photons,
            "images": images,
            "size": size,
            "seed": seed,
            "on_progress": lambda done, total: bar.update(task, completed=done, total=total),
        }
        result: EvalReport
        if compare:
            from imcsr_live.train.compare import compare_methods

            result = compare_methods(
                compare,
                data,
                report,
                flicker_timepoints=flicker_frames,
                flicker_scenes=flicker_scenes,
                flicker_size=flicker_size,
                pipeline=pipeline,
                pipeline_images=pipeline_images,
                **test_set,
            )
        else:
            from imcsr_live.train.evaluate import evaluate_model

            assert model is not None
            result = evaluate_model(model, data, report, pooling=pooling, pool_window=pool_window, **test_set)
    typer.echo((report / "metrics.md").read_text(encoding="utf-8"))
    if compare:
        for extra in ("flicker.md", "claims.md"):
            if (report / extra).is_file():
                typer.echo((report / extra).read_text(encoding="utf-8"))
    for p in result.files:
        typer.echo(str(p))


ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="checkpoint DIR/NAME (NAME.safetensors + NAME.json) or a shipped NAME (default: the shipped model "
        "for the rig's structures; see imcsr-live models)",
    ),
]


def _process_targets(output: Path) -> list[Path]:
    """Every file ``process -o OUTPUT`` writes (separated, raw, SR, timepoint log), as the recorder names them."""
    from types import SimpleNamespace

    from imcsr_live.pipeline.recorder import recording_targets
    from imcsr_live.pipeline.session import recording_format

    plan = SimpleNamespace(path=output, format=recording_format(output, "ome-zarr"))
    return list(dict.fromkeys(recording_targets(plan).values()))  # type: ignore[arg-type]


@app.command()
def separate(
    sr: Annotated[Path, typer.Argument(help="SR time-lapse SR.tif, (T, Y, X) or (Y, X) float32")],
    output: Annotated[Path, typer.Option("--output", "-o", help="OUT.ome.zarr (default format) or OUT.ome.tif")],
    model: ModelOption = None,
    engine: Annotated[str, typer.Option("--engine", help="auto, torch-cpu, onnxruntime, torch-cuda, ...")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16, bf16")] = "fp32",
    overwrite: OverwriteOption = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="rig TOML whose structures pick the default model")
    ] = None,
) -> None:
    """Separate a reconstructed SR time-lapse into one channel per structure, (T, C, Y, X)."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.engine import load_model
    from imcsr_live.errors import CheckpointError
    from imcsr_live.outputs import refuse_existing, refuse_input_as_output, staged
    from imcsr_live.pipeline.offline import separate_file

    refuse_input_as_output(output, [sr])
    refuse_existing([output], overwrite)
    if model is None:
        structures = load_rig_config(config or DEFAULT_DEMO_CONFIG).structure_names
        model = _default_model(None, structures, engine)
        if model is None:
            raise CheckpointError(
                f"no model given and none shipped for structures {structures}; pass --model NAME "
                "(see imcsr-live models)"
            )
    source = load_model(model)
    with progress_bar() as bar, staged(output) as (staging,):
        task = bar.add_task("separating", total=None, status="")
        separate_file(
            sr, source, staging, engine, precision,
            on_timepoint=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    typer.echo(str(output))


@app.command()
def process(
    raw: Annotated[Path, typer.Argument(help="raw SIM data (.tif, .ome.zarr, .mrc): (T, 9, Y, X) or (9, Y, X)")],
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="OUT.ome.zarr (default format) or OUT.ome.tif")],
    model: ModelOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Reconstruct and separate a recorded raw SIM time-lapse (the live pipeline, played back from a file)."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.outputs import refuse_existing, refuse_input_as_output, staged
    from imcsr_live.pipeline.offline import process_file
    from imcsr_live.pipeline.session import resolve_model

    rig = load_rig_config(config)
    from imcsr_live.io.streams import is_tiff

    if not (is_tiff(output) or output.name.endswith(".zarr")):
        raise InputDataError(f"output {output} must end in .ome.zarr (default format) or .ome.tif")
    targets = _process_targets(output)
    for path in targets:
        refuse_input_as_output(path, [raw])
    refuse_existing(targets, overwrite)
    source = resolve_model(rig, _default_model(model, rig.structure_names, rig.engine.kind))
    with progress_bar() as bar, staged(output) as (staging,):
        task = bar.add_task("processing", total=None, status="")
        summary = process_file(
            raw, rig, source, staging, on_timepoint=lambda done, total: bar.update(task, completed=done, total=total)
        )
    medians: dict[str, float] = summary["latency_medians_ms"]  # type: ignore[assignment]
    typer.echo(f"{output}  ({summary['timepoints_separated']} timepoints; median reconstruct "
               f"{medians.get('reconstruct', 0):.0f} ms, separate {medians.get('separate', 0):.0f} ms)")  # fmt: skip


@app.command("acquire-training")
def acquire_training(
    config: ConfigOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="dataset folder DIR (a second run resumes it)")],
    timepoints: Annotated[
        int, typer.Option("--timepoints", min=1, max=100_000, help="timepoints the dataset should hold in all")
    ] = 20,
    interval: Annotated[
        float | None, typer.Option("--interval", min=0.001, help="seconds between timepoints (default: the rig's)")
    ] = None,
    presets: Annotated[
        str | None,
        typer.Option(
            "--presets",
            help="P1,P2,...: one excitation preset per structure, in the rig's order "
            "(default: the preset of each structure in the rig TOML)",
        ),
    ] = None,
    positions: Annotated[
        Path | None, typer.Option("--positions", help="CSV of stage positions, one x_um,y_um per line")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="start the dataset in DIR again (its files are deleted first)")
    ] = False,
) -> None:
    """Training data on a multi-colour sample: per timepoint one SIM stack per structure's preset, reconstructed."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.pipeline.training_data import (
        TrainingRequest,
        acquire_training_dataset,
        describe_dataset,
        read_positions,
    )

    rig = load_rig_config(config)
    chosen = [p.strip() for p in presets.split(",")] if presets is not None else None
    request = TrainingRequest(output, timepoints, interval, chosen, read_positions(positions) if positions else None,
                              overwrite)  # fmt: skip
    with progress_bar() as bar:
        task = bar.add_task("acquiring", total=timepoints, status="")

        def show(done: TimepointDone) -> None:
            bar.update(task, completed=done.done, status=f"timepoint {done.index + 1}: {done.seconds:.1f} s")

        manifest = acquire_training_dataset(rig, request, show)
    for line in describe_dataset(output, manifest):
        typer.echo(line)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ImcsrError as exc:
        log.debug("failed", exc_info=True)
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


def run_as_program() -> None:
    """Process entry point (console script, ``python -m imcsr_live``): :func:`main`, then exit.

    When the Micro-Manager core (C++ ``pymmcore``) was loaded, the process leaves without interpreter teardown
    once our own work is finished and flushed: a device-driver thread still inside MMCore while Python finalises
    aborts the process ("FATAL: exception not rethrown", exit 134) *after* a successful run. Recordings are
    already final at this point (runs close their pipeline and recorder before returning).
    """
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    if "pymmcore" not in sys.modules:
        sys.exit(code)
    import os
    import threading

    for thread in threading.enumerate():  # what Python's own shutdown would wait for
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_as_program()
