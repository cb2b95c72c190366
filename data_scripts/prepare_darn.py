"""Prepare DARN -> OUT/table.csv (+ report.json).

DARN in ASEN's released split layout: filenames_*.txt, label_train.txt, query_*.txt,
candidate_*.txt (and meta.json); images under the same folder (pic/).

    python data_scripts/prepare_darn.py --data-dir PATH --out DIR [--min-count N] [--no-verify]

Prints what it read, per attribute value, and everything it left out (see
mclfir_lite/data/realdata.py). Run with --help for the options and where to get the data.
"""
import sys

from mclfir_lite.data.realdata import main

if __name__ == "__main__":
    sys.exit(main("darn", sys.argv[1:]))
