"""The main job of `make augment`: the whole pipeline on real photos, then a contact sheet.

Usage: python examples/augment_examples.py [IMAGE_OR_FOLDER ...] [--workdir DIR]

Without arguments it runs on examples/images/: the public-domain astronaut photo from
scikit-image (always available offline, written there on first run, not committed) plus any
photos you put there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from skimage import data

from augmentface.imageio import write_image_atomic
from augmentface.pipeline import DEFAULT_TARGETS, PipelineConfig, run_pipeline

HERE = Path(__file__).resolve().parent


def default_inputs() -> list[Path]:
    """examples/images/, with the astronaut written into it when missing."""
    astronaut = HERE / "images" / "astronaut.png"
    if not astronaut.exists():
        write_image_atomic(astronaut, data.astronaut())
    return [HERE / "images"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="images or folders")
    parser.add_argument("--workdir", type=Path, default=Path("augment"))
    args = parser.parse_args(argv)
    inputs = args.inputs or default_inputs()
    # Rejected outputs are kept (output/rejected/) so the contact sheet can show them, framed
    # in red: the astronaut smiles, and her smile survives under most other labels.
    config = PipelineConfig(workdir=args.workdir, keep_rejected=True)
    reports = run_pipeline(inputs, DEFAULT_TARGETS(), config)
    for report in reports:
        print(f"{report.stage:8s} done {report.done:4d}  skipped {report.skipped:4d}  "
              f"failed {report.n_failed:3d}  rejected {report.rejected:3d}  "
              f"-> {report.manifest_path}")
    labels = pd.read_csv(reports[-1].manifest_path.with_suffix(".csv"))
    for row in labels[labels["status"] == "rejected"].itertuples():
        print(f"rejected {Path(row.image_path).name} {row.target_id}: {row.error}")
    print(f"contact sheet: {args.workdir / 'contact_sheet.png'}")
    return 1 if any(r.n_failed for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
