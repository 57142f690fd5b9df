#!/usr/bin/env python
"""Import BioSR (MRC) into the per-structure folder layout used by `imcsr-live train` / `evaluate`.

  python tools/import_biosr.py /data/BioSR data/biosr --structures CCPs ER Microtubules --raw-levels 1 5 9

Writes data/biosr/<Structure>/Cell_NNN.tif (float32 SR ground truth); with --raw-levels also
data/biosr_raw/level_NN/<Structure>/Cell_NNN.tif (uint16, 9 raw frames). Needs `mrcfile` (a dependency).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imcsr_live.errors import ImcsrError
from imcsr_live.train.biosr import BIOSR_STRUCTURES, import_biosr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="BioSR folder (holds CCPs/, ER/, Microtubules/, F-actin/)")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--structures", nargs="+", help=f"default: all found of {', '.join(BIOSR_STRUCTURES)}")
    parser.add_argument("--raw-levels", type=int, nargs="+", help="also export these raw SNR levels")
    args = parser.parse_args(argv)
    try:
        summary = import_biosr(
            args.root, args.out, structures=args.structures, raw_levels=args.raw_levels, on_file=lambda p: print(p)
        )
    except ImcsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for name, paths in summary.written.items():
        print(f"{name}: {len(paths)} images")
    for s in summary.skipped:
        print(f"skipped {s}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
