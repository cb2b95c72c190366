"""DeepFashion attribute benchmark: ``Anno/list_attr_img.txt``, ``Anno/list_attr_cloth.txt``,
``Eval/list_eval_partition.txt``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .table import FashionTable
from .realutils import PrepareReport, check_layout, read_lines, build_table, common_options, asen_split


DEEPFASHION_TYPES = {1: "texture", 2: "fabric", 3: "shape", 4: "part", 5: "style"}  # ASEN's five attributes


def _counted_lines(path: Path, report: PrepareReport) -> list[tuple[int, str]]:
    """DeepFashion's list files: a count, a header, then rows. Returns ``(line number, text)``;
    a count that differs from the rows is reported."""
    lines = read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and a header line, found {len(lines)} line(s)")
    body = [(i, l) for i, l in enumerate(lines[2:], start=3) if l.strip()]
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path} line 1: expected the number of rows, got {lines[0][:40]!r}") from None
    if declared != len(body):
        report.notes.append(f"{path.name} declares {declared} rows but has {len(body)}")
    return body


def prepare_deepfashion(data_dir, out=None, *, attributes=tuple(DEEPFASHION_TYPES.values()), min_count: int = 100,
                        seed: int = 0, test_fraction: float = 0.25, verify: bool = True, strict: bool = False,
                        quiet: bool = False, progress: bool = True) -> FashionTable:
    """DeepFashion Category and Attribute Prediction: 1000 binary attributes, grouped by
    ``list_attr_cloth.txt`` into five types (texture, fabric, shape, part, style), which
    are ASEN's five attributes. An image gets a value for a type when exactly one of that
    type's attributes is positive (several: ambiguous for retrieval, counted in the report;
    none: not annotated). Split: ``list_eval_partition.txt`` (val counted as train), or
    ASEN's ``filenames_*.txt`` when they lie in ``data_dir``.
    """
    root = Path(data_dir).expanduser().resolve()
    check_layout("deepfashion", root, ["Anno/list_attr_img.txt", "Anno/list_attr_cloth.txt",
                                        "Eval/list_eval_partition.txt", "img"])
    report = PrepareReport("deepfashion", str(root / "Anno/list_attr_img.txt"))
    cloth = []
    for line_no, line in _counted_lines(root / "Anno/list_attr_cloth.txt", report):
        parts = line.rsplit(None, 1)  # names contain spaces ("peter pan collar  4")
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in DEEPFASHION_TYPES:
            raise ValueError(f"{root / 'Anno/list_attr_cloth.txt'} line {line_no}: expected 'name type(1-5)', "
                             f"got {line[:60]!r}")
        cloth.append((parts[0].strip(), DEEPFASHION_TYPES[int(parts[1])]))
    by_type = {t: np.array([i for i, (_, tt) in enumerate(cloth) if tt == t]) for t in DEEPFASHION_TYPES.values()}
    part = {}
    for line_no, line in _counted_lines(root / "Eval/list_eval_partition.txt", report):
        bits = line.split()
        if len(bits) != 2 or bits[1] not in ("train", "val", "test"):
            report.skipped_lines.append(f"list_eval_partition.txt line {line_no}: expected 'image train|val|test'")
            continue
        part[bits[0]] = "test" if bits[1] == "test" else "train"
    asen = asen_split(root)
    if asen is not None:
        report.notes.append("split from ASEN's filenames_{train,valid,test}.txt (valid counted as train)")
    ambiguous = Counter()
    records = []
    for line_no, line in _counted_lines(root / "Anno/list_attr_img.txt", report):
        bits = line.split()
        where = f"list_attr_img.txt line {line_no}"
        if len(bits) != len(cloth) + 1:
            report.skipped_lines.append(f"{where}: {len(bits) - 1} labels, expected {len(cloth)}")
            continue
        try:
            lab = np.array(bits[1:], dtype=np.int8)
        except ValueError:
            report.skipped_lines.append(f"{where}: labels are not -1/0/1")
            continue
        img = bits[0]
        split = (asen or part).get(img)
        if split is None:
            report.skipped_lines.append(f"{where}: {img} is not in "
                                        f"{'ASEN split files' if asen is not None else 'list_eval_partition.txt'}")
            continue
        values = {}
        for t, idx in by_type.items():
            pos = idx[lab[idx] == 1]
            if len(pos) == 1:
                values[t] = cloth[pos[0]][0]
            elif len(pos) > 1:
                ambiguous[t] += 1
        records.append({"image": str(root / img), "split": split, "values": values})
    for t, n in ambiguous.items():
        report.notes.append(f"{n} images have several positive {t} attributes: not annotated for {t}")
    return build_table("deepfashion", report.source, records, list(attributes), out, report=report,
                  **common_options(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))
