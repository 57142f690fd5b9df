"""Side-by-side comparison with napari-sim-processor (PyPI, BSD-3) on the same synthetic stacks.

Both reconstruct the same two noise realisations of one synthetic specimen (hardware_configs/simulated.toml);
each estimates its own pattern parameters. Reported per photon level: the FRC (1/7) resolution of each
reconstruction and its gain over widefield (linear outputs, no clipping), the correlation with the band-limited
ground truth, and median times for the start-up estimation and for the cached reconstruction (numpy/pocketfft
and torch paths of napari-sim-processor vs our torch Wiener stage), all on this machine. Each tool's Wiener
parameter can be given as a list (the FRC depends on it a little: it sets how each ring is weighted), so the
comparison can be made at both tools' defaults and at their best settings. ``--plot`` draws the FRC curves.

napari-sim-processor is NOT a dependency of imcsr-live (it pulls in napari). Install it without dependencies
into the venv for this script:  ``pip install --no-deps napari-sim-processor==0.1.1``  (or pass
``--nsp-path`` to an unpacked wheel). Its package ``__init__`` imports napari widgets, so this script loads
only its ``processors`` modules through a stub package.

``--specimen beads`` uses the bead resolution-test slide of ``tools/validate_recon.py`` instead of the cell. Where
an FRC does not drop below 1/7 inside the SIM support (beads at high photon counts), the line shows the lower
bound instead: ``FRC >= 1/7 to F kc (min M), gain >= G``.

Run: ``python tools/compare_napari_sim.py --size 512 --photons 1000,200 --seeds 0,1 --plot docs/recon_frc.png``
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import time
import types
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools")]

from validate_recon import SPECIMENS, frc_minimum, specimen_truth  # noqa: E402

from imcsr_live.config import RigConfig, load_rig_config  # noqa: E402
from imcsr_live.recon.preprocess import preprocess  # noqa: E402
from imcsr_live.recon.quality import FrcResult, frc  # noqa: E402
from imcsr_live.recon.reconstructor import Reconstructor  # noqa: E402
from imcsr_live.synth.beads import BeadParams  # noqa: E402
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings  # noqa: E402


def load_nsp(path: str | None) -> type:
    """``ConvSimProcessor`` class of napari-sim-processor, without importing napari."""
    if path is None:
        spec = importlib.util.find_spec("napari_sim_processor")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("napari-sim-processor not found: pip install --no-deps napari-sim-processor==0.1.1")
        root = Path(next(iter(spec.submodule_search_locations)))
    else:
        root = Path(path) / "napari_sim_processor"
    pkg = types.ModuleType("napari_sim_processor")
    pkg.__path__ = [str(root)]
    sys.modules["napari_sim_processor"] = pkg
    sub = types.ModuleType("napari_sim_processor.processors")
    sub.__path__ = [str(root / "processors")]
    sys.modules["napari_sim_processor.processors"] = sub
    with redirect_stdout(io.StringIO()):  # it prints which back-ends it found
        for name in ("baseSimProcessor", "baseSimProcessor3D", "convSimProcessor"):
            full = f"napari_sim_processor.processors.{name}"
            s = importlib.util.spec_from_file_location(full, root / "processors" / f"{name}.py")
            assert s is not None and s.loader is not None
            mod = importlib.util.module_from_spec(s)
            sys.modules[full] = mod
            s.loader.exec_module(mod)
    return sys.modules["napari_sim_processor.processors.convSimProcessor"].ConvSimProcessor


def _resolution(res: FrcResult, wide: FrcResult, kc: float, support: float) -> str:
    """FRC cutoff and gain over widefield, or their lower bounds where the curve stays above 1/7."""
    if np.isfinite(res.cutoff_per_um):
        return (
            f"FRC cutoff {res.cutoff_per_um:.2f} /um = {1e3 * res.resolution_um:.1f} nm, "
            f"gain {res.cutoff_per_um / wide.cutoff_per_um:.3f}"
        )
    lowest, at = frc_minimum(res, kc, support)
    return f"FRC >= 1/7 to {at / kc:.3f} kc (min {lowest:.3f}), gain >= {at / wide.cutoff_per_um:.3f}"


def median_time(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _their_setup(nsp_cls: type, rig: RigConfig, w: float) -> object:
    proc = nsp_cls(3, 3)
    proc.debug = False
    proc.NA, proc.n, proc.wavelength = rig.optics.na, 1.518, rig.optics.emission_wavelength_nm * 1e-3
    proc.pixelsize, proc.magnification = rig.optics.pixel_size_um * 100.0, 100.0
    proc.w = w
    proc.usePhases = True
    proc.eta = rig.k0_fraction_of_cutoff  # expected carrier, as a fraction of the cutoff
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--photons", default="1000,200")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both tools)")
    ap.add_argument("--nsp-path", default=None, help="folder holding an unpacked napari_sim_processor package")
    ap.add_argument(
        "--nsp-wiener",
        default="0.1,0.2,0.3",
        help="napari-sim-processor Wiener parameter(s) w (its class default 0.3, its widget default 0.2)",
    )
    ap.add_argument("--ours-wiener", default=None, help="our Wiener parameter(s) (default: the rig's [recon] wiener)")
    ap.add_argument("--specimen", default="cell", choices=SPECIMENS, help="synthetic cell or bead slide")
    ap.add_argument("--bead-density", type=float, default=BeadParams().density_per_um2, help="beads per um^2")
    ap.add_argument("--plot", type=Path, default=None, help="write FRC curves of the first case (first w each) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nsp_cls = load_nsp(args.nsp_path)
    rig = load_rig_config(REPO / "hardware_configs" / "simulated.toml")
    p = rig.optics.pixel_size_um
    n = args.size
    nsp_ws = [float(x) for x in args.nsp_wiener.split(",")]
    our_ws = [float(x) for x in args.ours_wiener.split(",")] if args.ours_wiener else [rig.recon.wiener]
    curves: dict[str, object] = {}
    for photons in (float(x) for x in args.photons.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(n, n), photons=photons, seed=seed))
            truth = specimen_truth(world, args.specimen, seed, BeadParams(density_per_um2=args.bead_density))
            kc, support = rig.optics.otf_cutoff_per_um, world.forward.sr_support_cycles_per_um
            scale = world._calibrate(truth)
            gt = world.forward.sr_ground_truth(truth).sum(axis=0)
            raws = [world.forward.simulate(truth, scale, np.random.default_rng(1000 * seed + k)).raw for k in (1, 2)]
            inner = (slice(48, -48), slice(48, -48))
            gt_inner = gt[inner].ravel()

            def corr(img: np.ndarray, ref: np.ndarray = gt_inner, sl: tuple = inner) -> float:
                return float(np.corrcoef(img[sl].ravel(), ref)[0, 1])

            wide = [preprocess(raw, 3, 3, rig.recon.camera_offset_adu).widefield for raw in raws]
            fw = frc(wide[0], wide[1], p)
            lines = [
                f"photons {photons:5.0f} seed {seed}: FRC cutoff widefield {fw.cutoff_per_um:.2f} /um "
                f"({fw.cutoff_per_um / kc:.3f} kc)"
            ]
            for w in our_ws:
                r = rig.model_copy(deep=True)
                r.recon.wiener = w
                ours = []
                for i, raw in enumerate(raws):
                    rec = Reconstructor(r, workers=1)
                    rec.reconstruct(raw)  # start-up estimate of this realisation
                    assert rec._wiener is not None and rec._estimator is not None
                    rec._wiener.clip = False  # linear output: clipping at 0 correlates the two realisations
                    prep = preprocess(raw, 3, 3, rig.recon.camera_offset_adu)
                    ours.append(rec._wiener.reconstruct(prep.frames).numpy().copy())
                    if i == 0 and w == our_ws[0]:
                        est, wien, fr = rec._estimator, rec._wiener, prep.frames
                        out = torch.empty(wien.sr_shape)
                        t_est = median_time(lambda e=est, f=fr: e.estimate(f), 2)
                        t_rec = median_time(lambda w_=wien, f=fr, o=out: w_.reconstruct(f, out=o), args.repeats)
                        lines.append(
                            f"  ours: start-up estimate {t_est * 1e3:.0f} ms, cached reconstruction (torch) "
                            f"{t_rec * 1e3:.1f} ms"
                        )
                fo = frc(ours[0], ours[1], p / 2)
                curves.setdefault(f"ours (w {w:g})", fo)
                lines.append(f"  ours w {w:g}: {_resolution(fo, fw, kc, support)}, corr GT {corr(ours[0]):.4f}")
            for w in nsp_ws:
                theirs = []
                for i, raw in enumerate(raws):
                    proc = _their_setup(nsp_cls, rig, w)
                    img = (raw.astype(np.float32) - rig.recon.camera_offset_adu).clip(0, None)
                    with redirect_stdout(io.StringIO()):
                        t0 = time.perf_counter()
                        proc.calibrate(img)
                        t_cal = time.perf_counter() - t0
                        theirs.append(np.asarray(proc.reconstruct_rfftw(img), dtype=np.float64).copy())
                        if i == 0 and w == nsp_ws[0]:
                            t_np = median_time(lambda p_=proc, x=img: p_.reconstruct_rfftw(x), args.repeats)
                            t_pt = median_time(lambda p_=proc, x=img: p_.reconstruct_pytorch(x), args.repeats)
                            lines.append(
                                f"  napari-sim-processor: calibrate {t_cal * 1e3:.0f} ms, cached reconstruction numpy "
                                f"{t_np * 1e3:.1f} ms, torch {t_pt * 1e3:.1f} ms"
                            )
                ft = frc(theirs[0], theirs[1], p / 2)
                curves.setdefault(f"napari-sim-processor (w {w:g})", ft)
                lines.append(
                    f"  napari-sim-processor w {w:g}: {_resolution(ft, fw, kc, support)}, corr GT {corr(theirs[0]):.4f}"
                )
            curves.setdefault("widefield", fw)
            print("\n".join(lines), flush=True)
            if args.plot is not None and "_done" not in curves:
                _plot(curves, rig.optics.otf_cutoff_per_um, photons, args.plot)
                curves["_done"] = True


def _plot(curves: dict, kc: float, photons: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name, res in curves.items():
        if name.startswith("_"):
            continue
        cut = f"{res.cutoff_per_um / kc:.3f} kc" if np.isfinite(res.cutoff_per_um) else "no 1/7 crossing"
        ax.plot(res.frequencies_per_um / kc, res.frc, label=f"{name}: {cut}")
    ax.axhline(1 / 7, color="k", lw=0.8, ls="--", label="1/7")
    ax.set(xlim=(0, 2.0), ylim=(-0.1, 1.02), xlabel="spatial frequency / kc (2 NA / lambda)", ylabel="FRC")
    ax.set_title(f"FRC of two noise realisations, {photons:g} photons, k0 = 0.9 kc")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
