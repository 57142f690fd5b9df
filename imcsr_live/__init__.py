"""imcsr-live: instant multicolour super-resolution (IMC-SR) for a live SIM microscope."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imcsr-live")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
