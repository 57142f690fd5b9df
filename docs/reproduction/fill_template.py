"""Write docs/REPRODUCTION.md from docs/reproduction/TEMPLATE.md and the files `imcsr-live evaluate --compare` wrote.

    python docs/reproduction/fill_template.py IMAGES PIPELINE_IMAGES SCENES "EVAL COMMAND" [DISCUSSION.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def body(name: str) -> str:
    """A generated Markdown file without its title line (the template has the section headings)."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[1:]).strip()


def main() -> None:
    images, pipeline_images, scenes, command = sys.argv[1:5]
    discussion = Path(sys.argv[5]).read_text(encoding="utf-8").strip() if len(sys.argv) > 5 else ""
    text = (HERE / "TEMPLATE.md").read_text(encoding="utf-8")
    values = {
        "images": images,
        "pipeline_images": pipeline_images,
        "scenes": scenes,
        "eval_command": command,
        "claims": body("claims.md"),
        "metrics": body("metrics.md"),
        "flicker": body("flicker.md"),
        "training": body("training.md"),
        "discussion": discussion,
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    (HERE.parent / "REPRODUCTION.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
