"""Render SynthFashion to PNG files plus a table CSV, the layout every real dataset is turned into.

    python data_scripts/make_synthfashion.py --out DIR [--n 6000] [--size 64] [--seed 0]

Writes DIR/images/000000.png ... and DIR/table.csv (columns image, split, one per
attribute). ``python -m mclfir_lite demo --dataset table --data-dir DIR/table.csv`` then
runs on the files, exactly as it would on a real dataset. Refuses to overwrite an
existing table (use --force).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mclfir_lite.data import synth
from mclfir_lite.data.table import FashionTable, write_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=6000, help="number of images")
    p.add_argument("--size", type=int, default=64, help="image size in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=1 / 3)
    p.add_argument("--force", action="store_true", help="overwrite an existing table")
    args = p.parse_args(argv)
    out = Path(args.out)
    if (out / "table.csv").exists() and not args.force:
        print(f"error: {out / 'table.csv'} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    if args.n < 2 or not 0 < args.test_fraction < 1:
        print("error: --n must be >= 2 and --test-fraction in (0, 1)", file=sys.stderr)
        return 2
    images, labels = synth.render(args.n, size=args.size, seed=args.seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = out / "images" / f"{i:06d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    # rows are i.i.d., so the last test_fraction of them is a random test split
    split = np.where(np.arange(args.n) < args.n - int(round(args.n * args.test_fraction)), "train", "test")
    table = FashionTable(paths, labels, {a: list(v) for a, v in synth.ATTRIBUTES.items()}, split.astype(object),
                         name=f"synthfashion-{args.n}-{args.size}px-seed{args.seed}")
    write_table(table, out / "table.csv")
    print(f"wrote {args.n} images and {out / 'table.csv'}")
    for attr, counts in table.counts().items():
        print(f"  {attr}: " + ", ".join(f"{v} {n}" for v, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
