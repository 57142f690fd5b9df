"""Every display source implements the whole :class:`DisplaySource` protocol (no capability probing)."""

from __future__ import annotations

import inspect

import pytest

from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.pipeline.views import DisplaySource, LiveView
from tests.tools.tool_loader import load_tool


def _protocol_methods() -> list[str]:
    return [
        name
        for name, member in vars(DisplaySource).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    ]


def test_the_protocol_has_the_window_controls() -> None:
    assert {"set_grey_kind", "set_display_settings", "newest", "info"} <= set(_protocol_methods())


def _bench_source() -> object:
    return load_tool("bench_gui").StaticSource([], ["A"], ["#FF0000"], 0.05)


@pytest.mark.parametrize("source", [LiveView, SimulatedPreview, _bench_source()], ids=["live", "preview", "bench"])
def test_every_source_implements_every_protocol_method(source: object) -> None:
    missing = [name for name in _protocol_methods() if not hasattr(source, name)]
    assert not missing, f"{source} lacks {missing}"
