"""One bibliography: every notebook of the series that has a references section renders it from
mclfir_lite.lab.references, with working-looking links."""
import re
from pathlib import Path

import nbformat
import pytest

from mclfir_lite.lab import references

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MINE = ["00", "01", "02", "03", "04", "08", "09", "10", "11"]


def test_every_link_is_https_and_arxiv_links_are_abstract_pages():
    for key, ref in references.REFERENCES.items():
        url = ref.get("url")
        if url is None:
            continue
        assert url.startswith("https://"), key
        if "arxiv.org" in url:
            assert re.fullmatch(r"https://arxiv\.org/abs/\d{4}\.\d{4,5}", url), key
            assert url.rsplit("/", 1)[1] in ref["venue"], f"{key}: arXiv id in the url and venue differ"


def test_markdown_numbers_references_and_links_titles():
    text = references.markdown(["mclfir", "focallens"])
    assert text.startswith("## References\n\n1. Xiao & Yamasaki. [")
    assert "(https://arxiv.org/abs/2603.20648)" in text
    assert "\n2. " in text and "[FocalLens" in text and "(https://arxiv.org/abs/2504.08368)" in text
    assert "IEEE" not in references.cite("mclfir")               # no venue is confirmed: cite the arXiv paper
    with pytest.raises(KeyError, match="unknown reference"):
        references.markdown(["nope"])
    with pytest.raises(ValueError, match="twice"):
        references.markdown(["ewc", "ewc"])


@pytest.mark.parametrize("prefix", MINE)
def test_notebook_ends_with_its_references_rendered_from_the_package(prefix):
    nb = nbformat.read(next(NOTEBOOKS.glob(f"{prefix}_*.ipynb")), as_version=4)
    last = nb.cells[-1]
    keys = last.metadata.get("references")
    assert keys, f"notebook {prefix}: the last cell is not a references section"
    assert last.source == references.markdown(keys), f"notebook {prefix}: references out of date with references.py"
