"""Re-run the robustness cases of docs/robustness.md and print their table.

    PYTHONPATH=. python docs/robustness_run.py [--only N,M] > /tmp/rows.md

Each case is a shell command run in a scratch folder (fixtures written first: small
Fashion-Product-Images folders with planted quirks, table CSVs with broken images, a
zip-slip archive), with quick settings (240 SynthFashion images at 16 px, 2 steps). A
case passes when the exit status and a piece of the output are what the case expects.
The SIGKILL-and-resume case is tests/test_reliability.py (it takes minutes).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DEMO = f"{PY} -m mclfir_lite demo --quick --n-images 240 --steps 2 --image-size 16 --strategies finetune --no-progress"
FPI = "--dataset fashion-product-images --data-dir fpi"
REAL = (f"{PY} -m mclfir_lite demo --quick --steps 2 --image-size 16 --strategies finetune --no-progress {FPI}")
PREP = f"{PY} data_scripts/prepare_fashion_product_images.py"
SNIP = f"{PY} -c"

# (case, command, what happened before issue 12, expected exit status, expected text in the output)
CASES = [
    ("unknown strategy", f"{DEMO} --strategies magic --out r1", "named", 2, "unknown strategy"),
    ("unknown attribute", f"{DEMO} --increments 'length;sleeves' --out r1", "named", 2, "['sleeves']"),
    ("unknown dataset", f"{DEMO} --dataset nope --out r1", "named", 2, "unknown dataset 'nope'"),
    ("unknown plan name", f"{DEMO} --increments synth99 --out r1", "named", 2, "['synth99']"),
    ("empty increment", f"{DEMO} --increments 'length;;colour' --out r1", "refused", 2, "increment 1"),
    ("corrupt image in a table", f"{DEMO.replace('--n-images 240 ', '')} --dataset table --data-dir t_corrupt/table.csv --increments colour --out r1",
     "listed by path", 2, "t_corrupt/img/3.png"),
    ("truncated image in a table", f"{DEMO.replace('--n-images 240 ', '')} --dataset table --data-dir t_trunc/table.csv --increments colour --out r1",
     "listed by path", 2, "t_trunc/img/3.png"),
    ("zero-byte image in a table", f"{DEMO.replace('--n-images 240 ', '')} --dataset table --data-dir t_empty/table.csv --increments colour --out r1",
     "listed by path", 2, "t_empty/img/3.png"),
    ("download with a wrong checksum",
     f"{SNIP} 'from mclfir_lite.realdata import download; download(\"file://'$PWD'/evil.zip\", \"dl/x.zip\", sha256=\"0\"*64)'"
     " ; ls dl", "file removed", 0, "checksum mismatch"),
    ("zip-slip archive", f"{SNIP} 'from mclfir_lite.realdata import _safe_extract; from pathlib import Path; "
     "_safe_extract(Path(\"evil.zip\"), Path(\"unz\"))'", "refused", 1, "outside unz"),
    ("no DNS", f"{SNIP} 'from mclfir_lite.realdata import download; download(\"http://no-such-host.invalid/a.zip\", \"dl/a.zip\")'",
     "fails in 3 s", 1, "local path"),
    ("corrupt checkpoint", f"mkdir -p r2/checkpoints && echo garbage > r2/checkpoints/finetune.pt && {DEMO} --out r2",
     "named", 2, "checkpoint r2/checkpoints/finetune.pt cannot be read safely"),
    ("planted pickle in --out (runs code?)",
     f"mkdir -p r3/checkpoints && {SNIP} 'import torch; exec(open(\"payload.py\").read()); "
     "torch.save({\"done\": P()}, \"r3/checkpoints/finetune.pt\")' && "
     f"{DEMO} --out r3; ls marker 2>&1 | tail -1", "payload ran", 0, "cannot access 'marker'"),
    ("checkpoint that unpickles to a list", f"mkdir -p r4/checkpoints && {SNIP} 'import torch; torch.save([1, 2], "
     f"\"r4/checkpoints/finetune.pt\")' && {DEMO} --out r4", "AttributeError traceback", 2, "it holds list"),
    ("--image-size 20 into a 16 px --out", f"{DEMO} --out r5 > /dev/null && {DEMO.replace('16', '20')} --out r5",
     "reused the 16 px run (0 s)", 2, "image_size: 16x16 -> 20x20"),
    ("notebook cache, other caps", f"{SNIP} \"exec(open('lab_caps.py').read())\"", "first caps' mAPs returned", 0,
     "different files True, same numbers as uncached True"),
    ("checkpoint from another package version", f"{SNIP} \"exec(open('version.py').read())\"", "reused", 0,
     "differs in: version"),
    ("two runs on one --out at once", f"({DEMO} --seed 7 --out r6 > o7 2>&1 & {DEMO} --seed 8 --out r6 > o8 2>&1; wait); "
     "cat o7 o8 | grep -h 'in use'", "both exit 0, files mixed", 0, "is in use by another demo run (pid"),
    ("--steps 0", f"{DEMO} --steps 0 --out r1", "ran the preset", 2, "--steps must be a positive integer, got 0"),
    ("--steps -5", f"{DEMO} --steps -5 --out r1", "config error", 2, "--steps must be a positive integer, got -5"),
    ("--image-size 0", f"{DEMO} --image-size 0 --out r1", "ran the preset", 2, "--image-size must be a positive"),
    ("--increments ''", f"{DEMO} --increments '' --out r1", "ran the preset", 2, "--increments '' is empty"),
    ("--n-images 0", f"{DEMO} --n-images 0 --out r1", "ran the preset", 2, "--n-images must be a positive"),
    ("--seed -1", f"{DEMO} --seed -1 --out r1", "numpy traceback", 2, "--seed must be >= 0"),
    ("--data-dir with synthfashion", f"{DEMO} --data-dir fpi --out r1", "silently ignored", 2,
     "--data-dir does not apply to synthfashion"),
    ("--n-images with a real dataset", f"{REAL} --n-images 50 --out r1", "silently ignored", 2,
     "--n-images applies to synthfashion only"),
    ("--device tpu", f"{DEMO} --device tpu --out r1", "torch's raw message", 2, "--device 'tpu' is not a device"),
    ("--out is a file", f"{DEMO} --out afile", "traceback", 2, "needs a folder, but this is a file: afile"),
    ("--out below a file", f"{DEMO} --out afile/sub", "NotADirectoryError traceback", 2, "Not a directory: afile/sub"),
    ("--out not permitted", f"{DEMO} --out /sys/mclfir-test", "PermissionError traceback", 2,
     "Operation not permitted: /sys/mclfir-test"),
    ("--out checked before data loads", f"{REAL} --out afile", "after loading data", 2, "needs a folder"),
    ("checkpoints folder unwritable", f"mkdir -p r7 && touch r7/checkpoints && {DEMO} --out r7",
     "failed after training, no path", 2, "r7/checkpoints"),
    ("Ctrl-C", f"(set -m; {DEMO.replace('finetune', 'finetune mclfir').replace('--steps 2', '--steps 300')} --out r8 2> o9 & "
     "p=$!; while [ ! -f r8/checkpoints/finetune.pt ]; do sleep 0.2; done; sleep 1; kill -INT $p; wait $p; "
     "echo exit $?); cat o9", "15-line traceback", 0, "run the same command again to resume"),
    ("styles.csv: comma in articleType", f"{PREP} --data-dir fpi_comma --out p1 --min-count 1 > /dev/null; "
     "grep -o 'line 57: [^;]*' p1/report.json | head -1", "baseColour=Tops, usage=2011", 0,
     "line 57: 11 fields for 10 columns"),
    ("styles.csv: comma in the name", f"{PREP} --data-dir fpi_comma --out p1 --min-count 1 > /dev/null; "
     "grep -o 'line 50: [^\"]*' p1/report.json", "repaired", 0, "taken as part of productDisplayName"),
    ("styles.csv not UTF-8", f"{PREP} --data-dir fpi_latin1 --out p2 --min-count 2 > /dev/null; "
     "grep -o 'styles.csv line 5: [^\"]*' p2/report.json", "position 3899 of a chunk", 0,
     "line 5: not UTF-8 text (byte 0xe9)"),
    ("image repaired after preparing", f"{SNIP} \"exec(open('repair.py').read())\"", "stays excluded", 0,
     "before False after True"),
    ("--rebuild", f"{REAL} --out r9 > /dev/null 2>&1; {REAL} --out r9 --rebuild | grep -m1 'rows ('", "no such option", 0,
     "fashion-product-images: 4"),
    ("--strict in the demo", f"{REAL} --out r10 --strict", "no such option", 2, "strict mode stops on"),
    ("--strict in a preparer (skipped line)", f"{PREP} --data-dir fpi_comma --out p3 --min-count 1 --strict",
     "only corrupt images", 2, "strict mode stops on"),
    ("report lists every row and file left out", f"{PREP} --data-dir fpi --out p4 > /dev/null; {SNIP} \"import json; "
     "r = json.load(open('p4/report.json')); print({k: len(r[k]) for k in ('skipped_lines', 'missing_images', "
     "'corrupt_images', 'unused_images', 'unannotated_images')})\"", "counts only", 0, "'unused_images': 1"),
    ("removed attribute asked for", f"{REAL} --increments 'gender;season' --out r11", "unknown attribute", 2,
     "removed when the dataset was prepared: 'season'"),
    ("open_clip weights missing", f"{DEMO} --encoder open_clip:ViT-B-32:no-such-tag --frozen-encoder --out r12 "
     "> /dev/null 2>&1; grep -A3 '\"encoder\": {' r12/results.json | tr -d '\\n '", "named the encoder asked for", 0,
     "EfficientNet-Lite0used"),
]

PAYLOAD = """
class P:
    def __reduce__(self):
        return (exec, ("open('marker', 'w').write('code ran')",))
"""

LAB_CAPS = """
from mclfir_lite.continual import Config
from mclfir_lite.datasets import synthfashion_table
from mclfir_lite.lab import Lab
t = synthfashion_table(n=240, size=16)
cfg = Config(steps_per_attribute=2, batch_size=16, encoder_width=8, embed_dim=16)
a, b = (Lab.from_table(t, [['colour'], ['pattern']], cfg, True, 16, max_queries=q, max_candidates=c)
        for q, c in ((5, 20), (None, None)))
for lab in (a, b):
    lab.runs_dir = 'labruns'
a.run('finetune', progress=False)
full = b.run('finetune', progress=False).result()['map_matrix']
print('different files', a.runner('finetune').checkpoint != b.runner('finetune').checkpoint,
      end=', ')
print('same numbers as uncached', full == b.run('finetune', cache=False, progress=False).result()['map_matrix'])
"""

VERSION = """
import mclfir_lite
from mclfir_lite.continual import Config
from mclfir_lite.datasets import synthfashion_table
from mclfir_lite.lab import Lab
t = synthfashion_table(n=240, size=16)
lab = Lab.from_table(t, [['colour']], Config(steps_per_attribute=2, batch_size=16, encoder_width=8), True, 16)
r = lab.runner('finetune', cache=False, progress=False)
r.checkpoint = __import__('pathlib').Path('v.pt')
r.run()
mclfir_lite.__version__ = '0.2.0'
r2 = lab.runner('finetune', cache=False, progress=False)
r2.checkpoint = r.checkpoint
try:
    r2.load()
except ValueError as err:
    print(err)
"""

REPAIR = """
from pathlib import Path
from PIL import Image
from mclfir_lite.realdata import load_prepared
names = lambda t: {Path(p).name for p in t.images}
before = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_r', quiet=True, min_count=2))
Image.new('RGB', (12, 16), (255, 0, 0)).save('fpi_r/images/100104.jpg')
after = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_r', quiet=True, min_count=2))
print('before', before, 'after', after)
"""


def fixtures(w: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image
    from test_realdata import write_fpi  # the Kaggle-layout fixture with every quirk of the real file
    write_fpi(w / "fpi", n=456)
    jpg_extra = w / "fpi" / "images" / "999999.jpg"
    Image.new("RGB", (12, 16)).save(jpg_extra)  # an image no row names
    write_fpi(w / "fpi_r")
    write_fpi(w / "fpi_comma")
    lines = (w / "fpi_comma" / "styles.csv").read_text().splitlines()
    lines.append("100106,Men,Apparel,Topwear,Tops, Tunics,Blue,Summer,2011,Casual,Some Tunic")  # line 57
    (w / "fpi_comma" / "styles.csv").write_text("\n".join(lines) + "\n")
    Image.new("RGB", (12, 16)).save(w / "fpi_comma" / "images" / "100106.jpg")
    write_fpi(w / "fpi_latin1")
    raw = (w / "fpi_latin1" / "styles.csv").read_bytes().split(b"\n")
    raw[4] = raw[4].replace(b"Brand", b"Br\xe9nd")
    (w / "fpi_latin1" / "styles.csv").write_bytes(b"\n".join(raw))
    for name, bad in (("t_corrupt", b"\x89PNG not really"), ("t_trunc", None), ("t_empty", b"")):
        folder = w / name / "img"
        folder.mkdir(parents=True)
        rows = ["image,split,colour"]
        for i in range(40):
            Image.new("RGB", (16, 16), ((255, 0, 0), (0, 0, 255))[i % 2]).save(folder / f"{i}.png")
            rows.append(f"img/{i}.png,{('train', 'test')[i % 4 == 0]},{('red', 'blue')[i % 2]}")
        p = folder / "3.png"
        p.write_bytes(p.read_bytes()[:40] if bad is None else bad)
        (w / name / "table.csv").write_text("\n".join(rows) + "\n")
    with zipfile.ZipFile(w / "evil.zip", "w") as z:
        z.writestr("../evil.txt", "x")
    (w / "afile").write_text("a file")
    (w / "payload.py").write_text(PAYLOAD)
    (w / "lab_caps.py").write_text(LAB_CAPS)
    (w / "version.py").write_text(VERSION)
    (w / "repair.py").write_text(REPAIR)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default=None, help="comma-separated case numbers (1-based)")
    args = p.parse_args()
    only = {int(x) for x in args.only.split(",")} if args.only else None
    w = Path(tempfile.mkdtemp(prefix="mclfir-robustness-"))
    fixtures(w)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MCLFIR_CACHE": str(w / "cache"), "OMP_NUM_THREADS": "1"}
    print("| # | case | command | before | now | ok |\n|---|---|---|---|---|---|")
    failed = 0
    for k, (case, cmd, before, rc_want, text) in enumerate(CASES, start=1):
        if only and k not in only:
            continue
        cmd = cmd.replace("data_scripts/", f"{ROOT}/data_scripts/")
        t0 = time.perf_counter()
        res = subprocess.run(["bash", "-c", cmd], cwd=w, env=env, capture_output=True, text=True, timeout=600)
        out = res.stdout + res.stderr
        ok = res.returncode == rc_want and text in out
        failed += not ok
        line = next((ln for ln in out.splitlines()[::-1] if text in ln), out.strip().splitlines()[-1] if out.strip() else "")
        shown = line.replace(str(w) + "/", "").replace(PY, "python").replace("|", "\\|").strip()[:160]
        short = cmd.replace(PY, "python").replace(str(ROOT) + "/", "").replace("|", "\\|")
        print(f"| {k} | {case} | `{short}` | {before} | exit {res.returncode}: {shown} "
              f"({time.perf_counter() - t0:.0f} s) | {'yes' if ok else 'NO'} |", flush=True)
    print(f"\n{failed} case(s) not as expected; scratch folder {w}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
