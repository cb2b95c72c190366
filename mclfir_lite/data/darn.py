"""DARN in ASEN's released layout (``filenames_*.txt``, ``label_train.txt``, ``query_*.txt``,
``candidate_*.txt``, ``meta.json``): :func:`prepare_asen_layout` reads any dataset in that
layout, :func:`prepare_darn` is it with DARN's attributes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .table import FashionTable
from .realutils import PrepareReport, check_layout, read_lines, build_table, common_options


DARN_ATTRIBUTES = {  # ASEN's DARN attributes and their numbers of values, in ASEN's order
    "clothes category": 20, "clothes button": 13, "clothes color": 55, "clothes length": 7,
    "clothes pattern": 28, "clothes shape": 11, "collar shape": 26, "sleeve length": 8, "sleeve shape": 17,
}


def _column_name(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name.strip()).strip("_").lower()


def _read_meta(root: Path, dataset_key: str) -> dict | None:
    """ASEN's meta.json (in ``root`` or its parent; flat, or keyed by dataset name)."""
    for p in (root / "meta.json", root.parent / "meta.json"):
        if p.is_file():
            try:
                meta = json.loads(p.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{p}: not valid JSON ({err})") from err
            if "ATTRIBUTES" in meta:
                return meta
            for k, v in meta.items():
                if k.lower() == dataset_key.lower() and isinstance(v, dict) and "ATTRIBUTES" in v:
                    return v
    return None


def prepare_asen_layout(dataset: str, data_dir, out=None, *, default_attributes: dict[str, int],
                        dataset_key: str, attributes=None, min_count: int = 20, seed: int = 0,
                        test_fraction: float = 0.25, verify: bool = True, strict: bool = False,
                        quiet: bool = False, progress: bool = True) -> FashionTable:
    """A dataset in ASEN's released split layout (as used for DARN):

    * ``filenames_{train,valid,test}.txt``: one image path per line, relative to ``data_dir``;
    * ``label_train.txt``: ``file_index attribute_index value_index [attribute_index value_index ...]``
      (indices into ``filenames_train.txt``);
    * ``query_{valid,test}.txt``, ``candidate_{valid,test}.txt``: ``file_index attribute_index
      value_index`` (into ``filenames_{valid,test}.txt``);
    * ``meta.json`` (optional, here or one folder up): ``ATTRIBUTES``, ``ATTRIBUTES_NUM`` and,
      when given, ``ATTRIBUTES_VALUES``; else ``default_attributes`` and values named
      ``<attribute>_<index>``.

    Train rows come from ``label_train.txt``, test rows from ASEN's test queries and
    candidates (valid ones count as train). Our protocol redraws the query/candidate split
    of the test rows at random, so the numbers are comparable with ASEN's, not identical.
    """
    root = Path(data_dir).expanduser().resolve()
    check_layout(dataset, root, ["filenames_train.txt", "filenames_test.txt", "label_train.txt",
                                  "query_test.txt", "candidate_test.txt"])
    report = PrepareReport(dataset, str(root))
    meta = _read_meta(root, dataset_key)
    if meta is None:
        names = list(default_attributes)
        nums = dict(default_attributes)
        value_names = {a: [f"{_column_name(a)}_{k}" for k in range(n)] for a, n in nums.items()}
        report.notes.append("no meta.json found: ASEN's attribute list used, values named <attribute>_<index>")
    else:
        names = list(meta["ATTRIBUTES"])
        nums = meta.get("ATTRIBUTES_NUM", {})
        nums = nums if isinstance(nums, dict) else dict(zip(names, nums))
        given = meta.get("ATTRIBUTES_VALUES", {})
        value_names = {}
        for a in names:
            n = nums.get(a, default_attributes.get(a))
            if a not in given and n is None:
                raise ValueError(f"{dataset}: meta.json gives neither ATTRIBUTES_NUM nor ATTRIBUTES_VALUES for {a!r}")
            value_names[a] = list(given[a]) if a in given else [f"{_column_name(a)}_{k}" for k in range(int(n))]
    columns = {a: _column_name(a) for a in names}
    files = {s: read_lines(root / f"filenames_{s}.txt") for s in ("train", "valid", "test")
             if (root / f"filenames_{s}.txt").is_file()}
    records: dict[str, dict] = {}

    def add(split_name, fname_list, path_txt, multi):
        p = root / path_txt
        if not p.is_file():
            return
        for line_no, line in enumerate(read_lines(p), start=1):
            if not line.strip():
                continue
            where = f"{path_txt} line {line_no}"
            try:
                nums_ = [int(t) for t in line.split()]
            except ValueError:
                report.skipped_lines.append(f"{where}: not integers: {line[:60]!r}")
                continue
            if len(nums_) < 3 or (len(nums_) - 1) % 2 or (not multi and len(nums_) != 3):
                report.skipped_lines.append(f"{where}: expected 'file attribute value"
                                            f"{' [attribute value ...]' if multi else ''}', got {line[:60]!r}")
                continue
            fid, pairs = nums_[0], list(zip(nums_[1::2], nums_[2::2]))
            if not 0 <= fid < len(fname_list) or not fname_list[fid].strip():
                report.skipped_lines.append(f"{where}: file index {fid} is not a line of filenames_{split_name}.txt")
                continue
            rel = fname_list[fid].strip()
            split = "test" if split_name == "test" else "train"
            rec = records.setdefault(rel, {"image": str(root / rel), "split": split, "values": {}})
            if rec["split"] != split:
                report.skipped_lines.append(f"{where}: {rel} is in both the train and the test split; kept in "
                                            f"{rec['split']}")
                continue
            for a, v in pairs:
                if not 0 <= a < len(names) or not 0 <= v < len(value_names[names[a]]):
                    report.skipped_lines.append(f"{where}: attribute {a} value {v} out of range")
                    continue
                col, val = columns[names[a]], value_names[names[a]][v]
                old = rec["values"].get(col)
                if old is not None and old != val:
                    report.skipped_lines.append(f"{where}: {rel} has two values for {names[a]!r} "
                                                f"({old!r}, {val!r}); the first is kept")
                    continue
                rec["values"][col] = val

    add("train", files["train"], "label_train.txt", multi=True)
    for s in ("valid", "test"):
        if s in files:
            for kind in ("query", "candidate"):
                add(s, files[s], f"{kind}_{s}.txt", multi=False)
    report.notes.append("split from ASEN's files (valid counted as train); query/candidate redrawn at random")
    attrs = [columns[a] for a in names] if attributes is None else list(attributes)
    return build_table(dataset, str(root), list(records.values()), attrs, out, report=report,
                  **common_options(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


def prepare_darn(data_dir, out=None, *, attributes=None, min_count: int = 20, seed: int = 0,
                 test_fraction: float = 0.25, verify: bool = True, strict: bool = False, quiet: bool = False,
                 progress: bool = True) -> FashionTable:
    """DARN in ASEN's released layout (see :func:`prepare_asen_layout`); columns are ASEN's
    attribute names in snake case (``clothes_category``, ..., ``sleeve_shape``)."""
    return prepare_asen_layout("darn", data_dir, out, default_attributes=DARN_ATTRIBUTES, dataset_key="DARN",
                               attributes=attributes, min_count=min_count, seed=seed, test_fraction=test_fraction,
                               verify=verify, strict=strict, quiet=quiet, progress=progress)
