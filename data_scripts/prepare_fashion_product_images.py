"""Prepare Fashion Product Images (Small), Kaggle layout: styles.csv + images/<id>.jpg -> OUT/table.csv (+ report.json).

    python data_scripts/prepare_fashion_product_images.py --data-dir PATH --out DIR [--min-count N] [--no-verify]
    python data_scripts/prepare_fashion_product_images.py --download-url URL --sha256 HEX --out DIR

Prints what it read, per attribute value, and everything it left out (see
mclfir_lite/data/realdata.py). Run with --help for the options and where to get the data.
"""
import sys

from mclfir_lite.data.realdata import main

if __name__ == "__main__":
    sys.exit(main("fashion-product-images", sys.argv[1:]))
