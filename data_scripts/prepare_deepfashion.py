"""Prepare DeepFashion (attribute benchmark) -> OUT/table.csv (+ report.json).

Layout: Anno/list_attr_img.txt, Anno/list_attr_cloth.txt, Eval/list_eval_partition.txt, img/.

    python data_scripts/prepare_deepfashion.py --data-dir PATH --out DIR [--min-count N] [--no-verify]

Prints what it read, per attribute value, and everything it left out (see
mclfir_lite/data/realdata.py). Run with --help for the options and where to get the data.
"""
import sys

from mclfir_lite.data.realdata import main

if __name__ == "__main__":
    sys.exit(main("deepfashion", sys.argv[1:]))
