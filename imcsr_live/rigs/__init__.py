"""Rig files shipped inside the package (package data), so that a non-editable install has them too.

Copies of ``hardware_configs/simulated.toml``, ``sim_demo.toml`` and ``sim_demo.cfg`` (``hardware_configs/``
stays the place users look; tests/test_rigs.py keeps the copies identical). Relative paths inside a rig TOML
(``mm_config = "sim_demo.cfg"``) resolve beside the TOML (:meth:`imcsr_live.config.RigConfig.resolved_mm_config`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The rig TOMLs shipped here, by name (file name without ``.toml``).
RIG_NAMES = ("simulated", "sim_demo")


def default_rig(name: str = "simulated") -> Path:
    """Path of the shipped rig TOML ``name`` (``"simulated"``: the simulated microscope of ``demo``)."""
    if name not in RIG_NAMES:
        raise ValueError(f"no shipped rig {name!r}; shipped rigs: {', '.join(RIG_NAMES)}")
    path = resources.files(__name__) / f"{name}.toml"
    if not isinstance(path, Path):  # e.g. a zip import: the TOML and its .cfg need a real folder
        raise RuntimeError(f"the shipped rig {name!r} is not a file on disk ({path}); install imcsr-live unzipped")
    return path
