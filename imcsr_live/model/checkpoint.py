"""Model checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (card); see docs/architecture.md#model-checkpoints.

The card holds everything needed to rebuild and use the network: architecture, structure names and colours
(output order), input frames, input normalisation, training data description, metrics, uncertainty calibration,
the per-frame confidence reference and the SHA-256 of the weights file (checked on load). Resumable training
state (optimiser, iteration, lr schedule) goes to ``NAME.state.pt`` next to a checkpoint.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, cast

import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from imcsr_live.errors import CheckpointError
from imcsr_live.fileio import atomic_path, atomic_write, file_sha256
from imcsr_live.model.card import CARD_FORMAT, ModelCard, describe_card_error
from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.normalization import NORMALIZATION_CARD


def checkpoint_paths(stem: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` paths for ``stem`` given as ``DIR/NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    p = Path(stem)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(
    stem: str | Path,
    model: torch.nn.Module,
    *,
    structures: list[dict[str, str]],
    variant: str = "all",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    calibration: list[dict[str, float]] | None = None,
    confidence_reference: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write weights + card (atomically: temporary files, then rename). Returns their paths.

    ``confidence_reference``: thresholds of the per-frame confidence verdict
    (:meth:`imcsr_live.model.confidence.ConfidenceReference.to_dict`), fitted on the validation set.
    """
    net = cast(IMCSRNet, getattr(model, "module", model))  # unwrap DistributedDataParallel
    if len(structures) != net.cfg.out_channels:
        raise CheckpointError(f"{len(structures)} structures for a network with {net.cfg.out_channels} outputs")
    weights, card_path = checkpoint_paths(stem)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": CARD_FORMAT})
    card = {
        "format": CARD_FORMAT,
        "name": weights.stem,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "architecture": {"name": "IMCSRNet", **net.cfg.model_dump()},
        "variant": variant,
        "structures": structures,
        "input_frames": net.cfg.in_frames,
        "normalization": NORMALIZATION_CARD,
        "training": training or {},
        "metrics": metrics or {},
        "uncertainty_calibration": calibration,
        "confidence_reference": confidence_reference,
        "weights_file": weights.name,
        "weights_sha256": file_sha256(weights),
    }
    try:
        from imcsr_live import __version__

        card["app_version"] = __version__
    except ImportError:  # pragma: no cover
        pass
    atomic_write(card_path, json.dumps(card, indent=2, default=str))
    return weights, card_path


def read_card(stem: str | Path) -> dict[str, Any]:
    """The model card of a checkpoint, validated against :class:`~imcsr_live.model.card.ModelCard`.

    Raises
    ------
    CheckpointError
        Missing or unreadable card, or a key that does not fit (one line naming each).
    """
    _weights, card_path = checkpoint_paths(stem)
    if not card_path.is_file():
        raise CheckpointError(f"model card {card_path} not found; a checkpoint is NAME.safetensors + NAME.json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise CheckpointError(f"{card_path}: not a valid JSON model card ({exc})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{card_path}: not an imcsr-live model card (a JSON object is expected)")
    try:
        ModelCard.model_validate(card)
    except ValidationError as exc:
        raise CheckpointError(
            f"{card_path}: not a valid imcsr-live model card: {describe_card_error(exc)}; re-save it with "
            "`imcsr-live train` or fix these keys"
        ) from None
    return card


def load_checkpoint(
    stem: str | Path,
    *,
    expect_structures: list[str] | None = None,
    expect_architecture: IMCSRNetConfig | None = None,
    map_location: str | torch.device = "cpu",
    verify_hash: bool = True,
) -> tuple[IMCSRNet, dict[str, Any]]:
    """Rebuild the network of a checkpoint and load its weights; check it against what the caller expects.

    Raises
    ------
    CheckpointError
        Missing or corrupt files, a SHA-256 mismatch, or a structure list / architecture that differs from
        ``expect_structures`` / ``expect_architecture``; the message names the file and the difference.
    """
    weights, card_path = checkpoint_paths(stem)
    card = read_card(stem)
    if not weights.is_file():
        raise CheckpointError(f"weights {weights} not found (its card {card_path.name} is there)")
    if verify_hash and file_sha256(weights) != card["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: SHA-256 differs from its card {card_path.name}; the file is corrupt or replaced"
        )
    arch = {k: v for k, v in card["architecture"].items() if k != "name"}
    try:
        cfg = IMCSRNetConfig(**arch)
    except ValidationError as exc:
        raise CheckpointError(f"{card_path}: unknown architecture ({describe_card_error(exc)})") from None
    names = [s["name"] for s in card["structures"]]
    if len(names) != cfg.out_channels:
        raise CheckpointError(
            f"{card_path}: the card lists {len(names)} structures ({', '.join(names)}) but its network has "
            f"{cfg.out_channels} outputs; the card does not belong to these weights"
        )
    if expect_structures is not None and list(expect_structures) != names:
        raise CheckpointError(
            f"{card_path}: the model separates {names} but the configuration asks for {list(expect_structures)}; "
            "use a model trained for these structures (same order) or change the structure list"
        )
    if expect_architecture is not None and expect_architecture != cfg:
        diff = {
            k: (v, getattr(expect_architecture, k))
            for k, v in cfg.model_dump().items()
            if getattr(expect_architecture, k) != v
        }
        detail = ", ".join(f"{k}: checkpoint {a} vs config {b}" for k, (a, b) in diff.items())
        raise CheckpointError(f"{card_path}: architecture does not match the configuration ({detail})")
    model = IMCSRNet(cfg)
    try:
        state = load_file(str(weights), device=str(map_location))
    except Exception as exc:
        raise CheckpointError(f"{weights}: cannot read weights ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            f"{weights}: weights do not fit the architecture in {card_path.name} ({first[0].strip()})"
        ) from None
    return model.to(map_location), card
