"""The on-disk engine cache: exported ONNX graphs, TensorRT plans and timing caches survive restarts.

Location: ``$IMCSR_LIVE_CACHE_DIR`` if set, else the user cache folder (``platformdirs``) ``/engines``. Every
artefact is named by a key: the SHA-256 of a canonical JSON of everything it depends on, so a changed input
(weights, TensorRT version, GPU, precision, shapes) gives a new file instead of a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from imcsr_live.errors import EngineError


def cache_dir() -> Path:
    """The engine cache folder (created)."""
    env = os.environ.get("IMCSR_LIVE_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("imcsr-live")) / "engines"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create the engine cache {path} ({exc}); set IMCSR_LIVE_CACHE_DIR") from None
    return path


def cache_key(fields: dict[str, Any]) -> str:
    """Stable 24-hex-digit key of a JSON-able mapping (order of keys does not matter)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]
