"""Prepare FashionAI 2018 attributes: Annotations/label.csv + Images/ -> OUT/table.csv (+ report.json).

    python data_scripts/prepare_fashionai.py --data-dir PATH --out DIR [--min-count N] [--no-verify]

Prints what it read, per attribute value, and everything it left out (see
mclfir_lite/data/realdata.py). Run with --help for the options and where to get the data.
"""
import sys

from mclfir_lite.data.realdata import main

if __name__ == "__main__":
    sys.exit(main("fashionai", sys.argv[1:]))
