"""Write docs/REPRODUCTION.md from docs/reproduction/TEMPLATE.md and the files `imcsr-live evaluate --compare` wrote.

    python docs/reproduction/fill_template.py IMAGES PIPELINE_IMAGES SCENES "EVAL COMMAND" [DISCUSSION.md] \
        [--shipped-images N --shipped-pipeline-images M --shipped-discussion FILE]

The shipped model's comparison (old vs fine-tuned weights) is read from ``shipped_pipeline/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def body(name: str) -> str:
    """A generated Markdown file without its title line (the template has the section headings)."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[1:]).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images")
    ap.add_argument("pipeline_images")
    ap.add_argument("scenes")
    ap.add_argument("eval_command")
    ap.add_argument("discussion", nargs="?", type=Path, default=None)
    ap.add_argument("--shipped-images", default="")
    ap.add_argument("--shipped-pipeline-images", default="")
    ap.add_argument("--shipped-discussion", type=Path, default=None)
    args = ap.parse_args()

    def text_of(path: Path | None) -> str:
        return path.read_text(encoding="utf-8").strip() if path else ""

    text = (HERE / "TEMPLATE.md").read_text(encoding="utf-8")
    values = {
        "images": args.images,
        "pipeline_images": args.pipeline_images,
        "scenes": args.scenes,
        "eval_command": args.eval_command,
        "claims": body("claims.md"),
        "metrics": body("metrics.md"),
        "flicker": body("flicker.md"),
        "training": body("training.md"),
        "discussion": text_of(args.discussion),
        "shipped_images": args.shipped_images,
        "shipped_pipeline_images": args.shipped_pipeline_images,
        "shipped_metrics": body("shipped_pipeline/metrics.md"),
        "shipped_flicker": body("shipped_pipeline/flicker.md"),
        "shipped_discussion": text_of(args.shipped_discussion),
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    (HERE.parent / "REPRODUCTION.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
