"""Old import path of the checkpoint I/O, which now lives in :mod:`imcsr_live.model.checkpoint`."""

from imcsr_live.fileio import file_sha256 as sha256_file
from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint, read_card, save_checkpoint

__all__ = ["checkpoint_paths", "load_checkpoint", "read_card", "save_checkpoint", "sha256_file"]
