"""How our images become napari layer data: one coloured, additively blended layer per structure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from napari.utils.colormaps import Colormap

#: ``(data, layer keyword arguments, layer type)``, what npe2 readers, sample data and widgets hand to napari.
LayerData = tuple[np.ndarray, dict[str, Any], str]

#: Units of our axes, by OME axis name (time in seconds, space in micrometres).
AXIS_UNITS = {"t": "second", "y": "micrometer", "x": "micrometer"}


def colormap_for(hex_colour: str) -> Colormap:
    """A black-to-colour ramp for ``#RRGGBB`` (napari has no colormap for an arbitrary colour by name)."""
    code = hex_colour.lstrip("#").upper()
    rgb = [int(code[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    return Colormap(colors=[[0.0, 0.0, 0.0, 1.0], [*rgb, 1.0]], name=f"imcsr #{code}", display_name=f"#{code}")


def spatial_layer_kwargs(axes: Sequence[str], scale: Sequence[float]) -> dict[str, Any]:
    """``scale``, ``axis_labels`` and ``units`` for an image with OME ``axes`` (``t``, ``y``, ``x``, ...)."""
    return {
        "scale": tuple(float(s) for s in scale),
        "axis_labels": tuple(axes),
        # axes without a physical unit (the raw frame index) count in pixels
        "units": tuple(AXIS_UNITS.get(a, "pixel") for a in axes),
    }


def structure_layer(
    data: np.ndarray,
    name: str,
    colour: str,
    geometry: dict[str, Any],
    contrast_limits: tuple[float, float] | None = None,
    visible: bool = True,
    metadata: dict[str, Any] | None = None,
) -> LayerData:
    """One channel as an additive layer in its structure colour; ``geometry`` from :func:`spatial_layer_kwargs`."""
    kwargs: dict[str, Any] = {
        "name": name,
        "colormap": colormap_for(colour),
        "blending": "additive",
        "visible": visible,
        "metadata": metadata or {},
        **geometry,
    }
    if contrast_limits is not None:
        kwargs["contrast_limits"] = contrast_limits
    return data, kwargs, "image"


def grey_layer(
    data: np.ndarray, name: str, geometry: dict[str, Any], visible: bool = False, colormap: str = "gray"
) -> LayerData:
    """A single-channel layer (SR, raw, residual, uncertainty), hidden by default so the overlay stays readable."""
    return data, {"name": name, "colormap": colormap, "visible": visible, "blending": "additive", **geometry}, "image"
