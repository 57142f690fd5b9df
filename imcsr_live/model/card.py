"""The model card (``NAME.json`` beside ``NAME.safetensors``) as a pydantic model, checked when a card is read.

Only what the app relies on is checked strictly (format, architecture, structures, weights hash); every other key
(training description, metrics, calibration, ...) is kept as written. A card that does not fit gives one line
naming the key and the problem, never a ``KeyError``/``TypeError`` further down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imcsr_live.colours import is_hex_colour

CARD_FORMAT = "imcsr-live-model/1"


class CardStructure(BaseModel):
    """One output channel of the network, in output order."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    color: str = "#FFFFFF"

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not is_hex_colour(value):
            raise ValueError(f'colour {value!r} is not of the form #RRGGBB (e.g. "#00FF00")')
        return value


class ModelCard(BaseModel):
    """The keys of a model card every consumer needs (others pass through unchanged)."""

    model_config = ConfigDict(extra="allow")

    format: Literal["imcsr-live-model/1"]
    name: str | None = None
    architecture: dict[str, Any] = Field(description="IMCSRNetConfig fields (+ name), rebuilds the network")
    structures: list[CardStructure] = Field(min_length=1)
    weights_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    input_frames: Literal[1, 3] | None = None
    runs_on: Literal["cpu", "gpu"] | None = Field(
        default=None,
        description="where the model keeps the live cadence: cpu (small network) or gpu (paper size); "
        "None: decided by its parameter count",
    )

    @property
    def structure_names(self) -> list[str]:
        return [s.name for s in self.structures]


def describe_card_error(error: ValidationError) -> str:
    """One line naming each bad key of a card: ``structures.0: Input should be an object (got 'MT')``."""
    problems = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = str(e["msg"]).removeprefix("Value error, ")
        got = e.get("input")
        detail = "" if e["type"] == "missing" or isinstance(got, dict | list) else f" (got {got!r})"
        problems.append(f"{where}: {message}{detail}")
    return "; ".join(problems)


def separation_worlds(data: Mapping[str, Any]) -> list[str]:
    """The synthetic worlds whose cells a ``[data]`` table (as saved in a card) trains on; [] for a user's data.

    ``synthetic`` -> the default world; ``pipeline`` -> its ``world``, plus the default world when
    ``default_fraction`` mixes its cells in, plus the worlds named in ``mix``; ``folder`` / ``acquired`` -> [] (no
    generator to draw frames from).
    """
    kind = str(data.get("kind", "synthetic"))
    if kind == "synthetic":
        return ["default"]
    if kind != "pipeline":
        return []
    world = str(data.get("world") or "default")
    mixed = (["default"] if data.get("default_fraction") else []) + sorted(data.get("mix") or {})
    return [world] + [w for w in dict.fromkeys(mixed) if w != world]


def separation_data(card: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[data]`` table a card's separation was trained on: ``training.separation_data`` for a head trained
    alone (``train_only = "uncertainty"`` sits on its init's separation), else ``training.config.data``; {} if
    the card does not say."""
    training = card.get("training")
    if not isinstance(training, Mapping):
        return {}
    config = training.get("config")
    data = training.get("separation_data") or (config.get("data") if isinstance(config, Mapping) else None)
    return dict(data) if isinstance(data, Mapping) else {}
