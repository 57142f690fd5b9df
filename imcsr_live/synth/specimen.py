"""The synthetic moving specimen: per-structure ground truth on a pixel grid, evolving over time.

A :class:`Specimen` owns one generator per requested structure kind, all living in the same physical field
(um). Geometry depends only on the field size and the seed, never on the pixel size, so the same specimen can
be rendered on the SR grid or on a finer one. Each kind draws from its own random stream (split from the
seed in a fixed order), so adding or reordering structures does not change the others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from imcsr_live.errors import SynthError
from imcsr_live.synth.ccps import CCPParams, ClathrinCoatedPits
from imcsr_live.synth.er import EndoplasmicReticulum, ERParams
from imcsr_live.synth.lysosomes import LysosomeParams, Lysosomes
from imcsr_live.synth.microtubules import MicrotubuleParams, Microtubules
from imcsr_live.synth.render import Grid

STRUCTURE_KINDS: tuple[str, ...] = ("microtubules", "er", "lysosomes", "ccps")

_DISPLAY_NAMES = {"microtubules": "Microtubules", "er": "ER", "lysosomes": "Lysosomes", "ccps": "CCPs"}

# Normalised (lower-case, letters and digits only) names and markers people use for each structure.
_ALIASES: dict[str, tuple[str, ...]] = {
    "microtubules": (
        "microtubules",
        "microtubule",
        "mts",
        "mt",
        "tubulin",
        "tubulins",
        "alphatubulin",
        "betatubulin",
        "tuba",
        "tubb",
        "ensconsin",
        "emtb",
        "map4",
    ),
    "er": (
        "er",
        "endoplasmicreticulum",
        "reticulum",
        "sec61",
        "sec61b",
        "sec61beta",
        "calnexin",
        "kdel",
        "erer",
        "ertubules",
        "ersheets",
        "reticulon",
        "rtn4",
    ),
    "lysosomes": (
        "lysosomes",
        "lysosome",
        "lyso",
        "lysos",
        "lamp1",
        "lamp2",
        "lamp",
        "lysotracker",
        "endolysosomes",
    ),
    "ccps": (
        "ccps",
        "ccp",
        "clathrincoatedpits",
        "clathrincoatedpit",
        "clathrin",
        "clathrinpits",
        "cla",
        "clc",
        "clta",
        "coatedpits",
        "ccvs",
    ),
}
_ALIAS_TO_KIND = {alias: kind for kind, aliases in _ALIASES.items() for alias in aliases}

# The order in which per-kind random streams are split from the seed; never reorder (it would change every
# seeded specimen). The last stream draws the cell-level brightness factors.
_STREAM_ORDER = (*STRUCTURE_KINDS, "brightness")


def structure_kind(name: str) -> str:
    """Map a structure's display name to the simulator's kind (case- and punctuation-insensitive).

    ``"Microtubules"``, ``"MTs"``, ``"tubulin"`` -> ``"microtubules"``; ``"ER"``, ``"Endoplasmic reticulum"``
    -> ``"er"``; ``"Lysosomes"``, ``"Lyso"``, ``"LAMP1"`` -> ``"lysosomes"``; ``"CCPs"``,
    ``"Clathrin-coated pits"``, ``"clathrin"`` -> ``"ccps"``.

    Raises
    ------
    SynthError
        If the name is not a structure the simulator can make.
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    kind = _ALIAS_TO_KIND.get(key)
    if kind is None:
        # Tolerate decorations such as "MTs (488)" or "ER-GFP" by looking for a known marker word.
        for marker, k in (
            ("tubulin", "microtubules"),
            ("microtubul", "microtubules"),
            ("reticulum", "er"),
            ("lysosom", "lysosomes"),
            ("lamp1", "lysosomes"),
            ("clathrin", "ccps"),
        ):
            if marker in key:
                kind = k
                break
    if kind is None:
        words = re.findall(r"[a-z0-9]+", str(name).lower())
        for w in words:
            if w in _ALIAS_TO_KIND:
                kind = _ALIAS_TO_KIND[w]
                break
    if kind is None:
        known = ", ".join(_DISPLAY_NAMES[k] for k in STRUCTURE_KINDS)
        raise SynthError(
            f"the simulator cannot make structure {name!r}; it can make {known} "
            "(rename the structure in the rig config to one of these)"
        )
    return kind


def world_kinds(structures: Sequence[str], world: str, kinds: Sequence[str]) -> list[str]:
    """The kind of each structure name for a world that makes only ``kinds``; else one clear SynthError line."""
    if isinstance(structures, str) or len(structures) == 0:
        raise SynthError(f"the {world} world needs a list of structure names (got {structures!r})")
    out = []
    for name in structures:
        try:
            kind: str | None = structure_kind(name)
        except SynthError:
            kind = None
        if kind not in kinds:
            raise SynthError(
                f"the {world} synthetic world cannot make {name!r}; it makes {', '.join(kinds)} only"
                f" ({', '.join(_DISPLAY_NAMES[k] for k in kinds)})"
            )
        out.append(str(kind))
    return out


@dataclass(frozen=True)
class SpecimenParams:
    """Everything that shapes a synthetic specimen, one parameter set per structure kind."""

    microtubules: MicrotubuleParams = field(default_factory=MicrotubuleParams)
    er: ERParams = field(default_factory=ERParams)
    lysosomes: LysosomeParams = field(default_factory=LysosomeParams)
    ccps: CCPParams = field(default_factory=CCPParams)
    # Each structure's overall brightness is multiplied by a log-uniform factor in this range per cell (seed):
    # expression and labelling levels differ between cells, so the network must not learn fixed ratios.
    cell_brightness_range: tuple[float, float] = (0.5, 2.0)
    max_substep_s: float = 0.25  # advance() moves in steps no longer than this

    def __post_init__(self) -> None:
        lo, hi = self.cell_brightness_range
        if not 0 < lo <= hi:
            raise SynthError(f"cell_brightness_range must be an increasing positive pair (got {(lo, hi)})")
        if not self.max_substep_s > 0:
            raise SynthError(f"max_substep_s must be > 0 (got {self.max_substep_s})")


Generator = Microtubules | EndoplasmicReticulum | Lysosomes | ClathrinCoatedPits


def seed_sequence(seed: int | np.random.Generator) -> np.random.SeedSequence:
    """The seed sequence of a specimen seed (a non-negative integer or a numpy Generator)."""
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise SynthError(f"specimen seed must be a non-negative integer or a numpy Generator (got {seed!r})")


class Specimen:
    """A moving specimen with one ground-truth channel per structure.

    ``generator_types`` names the class drawing each kind; a world with other morphologies subclasses them.

    Parameters
    ----------
    structures : sequence of str
        Structure display names, in output channel order (see :func:`structure_kind`).
    shape : (int, int)
        Grid the truth is rendered on, ``(rows, cols)``; the field is ``shape * pixel_size_um``.
    pixel_size_um : float
        Pixel size of that grid (normally the SR pixel, half the camera pixel).
    seed : int or numpy.random.Generator
        Source of all randomness (geometry and motion).
    params : SpecimenParams, optional
    """

    generator_types: ClassVar[dict[str, type]] = {
        "microtubules": Microtubules,
        "er": EndoplasmicReticulum,
        "lysosomes": Lysosomes,
        "ccps": ClathrinCoatedPits,
    }

    def __init__(
        self,
        structures: Sequence[str],
        shape: tuple[int, int],
        pixel_size_um: float,
        seed: int | np.random.Generator,
        params: SpecimenParams | None = None,
    ) -> None:
        if isinstance(structures, str):
            structures = [structures]
        names = tuple(str(s) for s in structures)
        if not names:
            raise SynthError("no structures requested; list at least one (e.g. Microtubules, ER, Lysosomes)")
        kinds = tuple(structure_kind(s) for s in names)
        for k in set(kinds):
            dup = [n for n, kk in zip(names, kinds, strict=True) if kk == k]
            if len(dup) > 1:
                raise SynthError(f"structures {dup} are all {_DISPLAY_NAMES[k]}; list each structure only once")
        try:
            self.grid = Grid((int(shape[0]), int(shape[1])), float(pixel_size_um))
        except (TypeError, ValueError, IndexError) as exc:
            raise SynthError(f"bad specimen grid {shape!r} / pixel size {pixel_size_um!r}: {exc}") from exc
        self.params = params or SpecimenParams()
        self._names = names
        self._kinds = kinds

        seq = seed_sequence(seed)
        streams = dict(zip(_STREAM_ORDER, seq.spawn(len(_STREAM_ORDER)), strict=True))
        rng = {k: np.random.default_rng(s) for k, s in streams.items()}

        p = self.params
        lo, hi = p.cell_brightness_range
        factors = np.exp(rng["brightness"].uniform(math.log(lo), math.log(hi), len(STRUCTURE_KINDS)))
        self._cell_brightness = dict(zip(STRUCTURE_KINDS, (float(f) for f in factors), strict=True))

        fld = self.grid.field
        self._gens: dict[str, Generator] = {}
        # Lysosomes need microtubule tracks even when microtubules are not a rendered channel.
        g = self.generator_types
        if "microtubules" in kinds or "lysosomes" in kinds:
            self._gens["microtubules"] = g["microtubules"](fld, p.microtubules, rng["microtubules"])
        if "er" in kinds:
            self._gens["er"] = g["er"](fld, p.er, rng["er"])
        if "lysosomes" in kinds:
            tracks = self._gens["microtubules"]
            assert isinstance(tracks, Microtubules)
            self._gens["lysosomes"] = g["lysosomes"](fld, p.lysosomes, rng["lysosomes"], tracks)
        if "ccps" in kinds:
            self._gens["ccps"] = g["ccps"](fld, p.ccps, rng["ccps"])
        self.time_s = 0.0

    @property
    def structures(self) -> tuple[str, ...]:
        """Structure names as given, in channel order."""
        return self._names

    @property
    def kinds(self) -> tuple[str, ...]:
        """Structure kinds (see :data:`STRUCTURE_KINDS`), in channel order."""
        return self._kinds

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def pixel_size_um(self) -> float:
        return self.grid.pixel_size_um

    @property
    def cell_brightness(self) -> dict[str, float]:
        """Per-kind overall brightness factor of this cell."""
        return dict(self._cell_brightness)

    def generator(self, kind: str) -> Generator:
        """The generator behind a kind (or a display name), for inspecting its geometry."""
        k = structure_kind(kind) if kind not in self._gens else kind
        if k not in self._gens:
            raise SynthError(f"this specimen has no {_DISPLAY_NAMES[k]}; it has {', '.join(self._names)}")
        return self._gens[k]

    @property
    def microtubules(self) -> Microtubules | None:
        g = self._gens.get("microtubules")
        return g if isinstance(g, Microtubules) else None

    @property
    def er(self) -> EndoplasmicReticulum | None:
        g = self._gens.get("er")
        return g if isinstance(g, EndoplasmicReticulum) else None

    @property
    def lysosomes(self) -> Lysosomes | None:
        g = self._gens.get("lysosomes")
        return g if isinstance(g, Lysosomes) else None

    @property
    def ccps(self) -> ClathrinCoatedPits | None:
        g = self._gens.get("ccps")
        return g if isinstance(g, ClathrinCoatedPits) else None

    def render(self) -> np.ndarray:
        """Ground truth now: float32 ``(C, H, W)``, one non-negative density channel per structure.

        Units are arbitrary but shared by all channels: an isolated structure's bright pixels are ~1 on the
        31.3 nm SR grid, times this cell's brightness factor for the structure.
        """
        out = np.empty((len(self._kinds), *self.grid.shape), dtype=np.float32)
        for c, kind in enumerate(self._kinds):
            img = self._gens[kind].render(self.grid, self._cell_brightness[kind])
            np.maximum(img, 0.0, out=out[c])  # blur round-off can leave -1e-9; densities are never negative
        return out

    def background(self) -> np.ndarray | None:
        """The original world has no unlabelled light."""
        return None

    def advance(self, dt_s: float) -> None:
        """Let every structure evolve for ``dt_s`` seconds, in sub-steps of at most ``max_substep_s``."""
        try:
            dt = float(dt_s)
        except (TypeError, ValueError):
            dt = math.nan
        if not (math.isfinite(dt) and dt >= 0):
            raise SynthError(f"time step must be a finite number of seconds >= 0 (got {dt_s!r})")
        dt_s = dt
        if dt_s == 0:
            return
        n_sub = max(1, math.ceil(dt_s / self.params.max_substep_s - 1e-9))
        h = dt_s / n_sub
        for _ in range(n_sub):
            # Tracks first: lysosomes move along the filaments as they are at the end of the step.
            for kind in ("microtubules", "er", "lysosomes", "ccps"):
                gen = self._gens.get(kind)
                if gen is not None:
                    gen.advance(h)
        self.time_s += dt_s
