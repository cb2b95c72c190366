"""Re-run the robustness cases of docs/robustness.md and print their table.

    PYTHONPATH=. python docs/robustness_run.py [--only N,M | --fast] [--scratch DIR] > /tmp/rows.md

Each case is a shell command run in a scratch folder (fixtures written first: small
Fashion-Product-Images folders with planted quirks, table CSVs with broken images or one-valued
attributes or saved by other tools, a zip-slip archive, a victim file for planted symlinks), with
quick settings (240 SynthFashion images at 16 px, 2 steps). A case passes when the exit status
is the one expected and every expected piece of text is in the output. Exit status 1 when any
case is not as expected. The script uses the package's public API only (nothing from tests/,
no underscore names). ``--fast``: the cases of FAST, run in CI by tests/test_robustness_doc.py.
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
TAB = f"{DEMO.replace('--n-images 240 ', '')} --dataset table"
SNIP = f"{PY} -c"

# (case, command, what happened before issue 12, expected exit status, expected text in the output)
CASES = [
    ("unknown strategy", f"{DEMO} --strategies magic --out r1", "named", 2, "unknown strategy"),
    ("unknown attribute", f"{DEMO} --increments 'length;sleeves' --out r1", "named", 2, "['sleeves']"),
    ("unknown dataset", f"{DEMO} --dataset nope --out r1", "named", 2, "unknown dataset 'nope'"),
    ("unknown plan name", f"{DEMO} --increments synth99 --out r1", "named", 2, "['synth99']"),
    ("empty increment", f"{DEMO} --increments 'length;;colour' --out r1", "refused", 2, "increment 1"),
    ("corrupt image in a table", f"{TAB} --data-dir t_corrupt/table.csv --increments colour --out r1",
     "listed by path", 2, "t_corrupt/img/3.png"),
    ("truncated image in a table", f"{TAB} --data-dir t_trunc/table.csv --increments colour --out r1",
     "listed by path", 2, "t_trunc/img/3.png"),
    ("zero-byte image in a table", f"{TAB} --data-dir t_empty/table.csv --increments colour --out r1",
     "listed by path", 2, "t_empty/img/3.png"),
    ("download with a wrong checksum",
     f"{SNIP} 'from mclfir_lite.data.realutils import download; download(\"file://'$PWD'/evil.zip\", \"dl/x.zip\", sha256=\"0\"*64)'"
     " ; ls dl", "file removed", 0, "checksum mismatch"),
    ("zip-slip archive", f"{SNIP} 'from mclfir_lite.data.realutils import safe_extract; safe_extract(\"evil.zip\", \"unz\")'",
     "refused", 1, "outside unz"),
    ("no DNS", f"{SNIP} 'from mclfir_lite.data.realutils import download; download(\"http://no-such-host.invalid/a.zip\", \"dl/a.zip\")'",
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
    ("open_clip weights missing", f"{DEMO} --encoder open_clip:ViT-B-32:laion400m_e31 --frozen-encoder --out r12 "
     "> /dev/null 2>&1; grep -A3 '\"encoder\": {' r12/results.json | tr -d '\\n '", "named the encoder asked for", 0,
     "EfficientNet-Lite0used"),
]

COLOURS = {"Black": (0, 0, 0), "Blue": (0, 0, 255), "White": (250, 250, 250), "Red": (255, 0, 0)}

PROBE = """
import os
from mclfir_lite.cli.main import main
os.makedirs('s0', exist_ok=True)
os.symlink(os.path.abspath('victim'), f's0/.write-probe-{os.getpid()}')  # the name the probe had: its PID
argv = 'demo --quick --n-images 240 --steps 2 --image-size 16 --strategies finetune --no-progress --out s0'
print('exit', main(argv.split()))
"""

LAB_TEMP = """
import time
from mclfir_lite.config import Config
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.lab.lab import Lab
t = synthfashion_table(n=240, size=16)
lab = Lab.from_table(t, [['colour'], ['pattern']], Config(steps_per_attribute=2, batch_size=16, encoder_width=8), True, 16)
lab.runs_dir = 'labruns_t'
try:
    lab.run('finetune', progress=False, temperature=0)
except ValueError as err:
    from pathlib import Path
    print(err, f"(before training: {not list(Path('labruns_t').rglob('*.pt'))})")  # no checkpoint written
"""

WIDGET = """
import matplotlib
matplotlib.use('Agg')
from mclfir_lite.config import Config
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.lab.lab import Lab
from mclfir_lite.lab.widgets import ForgettingCurves
t = synthfashion_table(n=240, size=16)
lab = Lab.from_table(t, [['colour'], ['pattern']], Config(steps_per_attribute=2, batch_size=16, encoder_width=8), True, 16)
try:
    ForgettingCurves({'finetune': lab.runner('finetune', cache=False, progress=False).result()})
except ValueError as err:
    print(err)
"""

LINKED = """
from pathlib import Path
from PIL import Image
from mclfir_lite.data.realdata import load_prepared
names = lambda t: {Path(p).name for p in t.images}
before = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_l', quiet=True, min_count=2))
Image.new('RGB', (12, 16), (255, 0, 0)).save('disk/images/100104.jpg')  # behind the symlinked images/
after = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_l', quiet=True, min_count=2))
print('before', before, 'after', after)
"""


def write_table(folder: Path, encoding: str = "utf-8", material: str = "cotton") -> None:
    """A table CSV of 40 PNGs: ``colour`` (red/blue) and ``material``, which has one value."""
    from PIL import Image
    (folder / "img").mkdir(parents=True)
    rows = ["image,split,colour,material"]
    for i in range(40):
        Image.new("RGB", (16, 16), ((255, 0, 0), (0, 0, 255))[i % 2]).save(folder / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{('train', 'test')[i % 3 == 0]},{('red', 'blue')[i % 2]},{material}")
    (folder / "table.csv").write_bytes(("\n".join(rows) + "\n").encode(encoding))


def write_fpi(root: Path, n: int = 48) -> None:
    """A Kaggle-layout Fashion-Product-Images folder with every quirk of the real styles.csv:
    unquoted commas, too few fields, an id that is not a number, a repeated id, a missing,
    a corrupt image, rare values and NA (the fixture of tests/test_realdata.py, written here
    so that this script needs nothing from tests/)."""
    from PIL import Image

    def jpg(path: Path, colour=(128, 64, 32)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 16), colour).save(path, format="JPEG")

    lines = ["id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"]
    for i in range(1, n + 1):
        colour = list(COLOURS)[i % 3]
        sub, art = (("Topwear", "Tshirts"), ("Shoes", "Casual Shoes"))[i % 2]
        gender, usage = ("Men", "Women")[(i // 3) % 2], ("Casual", "Sports")[(i // 2) % 2]
        name = f'"Brand {i}, {colour} {art}"' if i % 5 == 0 else f"Brand {i} {colour} {art}"
        lines.append(f"{i},{gender},Apparel,{sub},{art},{colour},Summer,2012,{usage},{'' if i == 7 else name}")
        jpg(root / "images" / f"{i}.jpg", COLOURS[colour])
    lines.append("100101,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Nike Men, Black, Tshirt")
    jpg(root / "images" / "100101.jpg")
    lines.append("100102,Men,Apparel,Topwear")
    lines.append("abc,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Bad id")
    lines.append("3,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Repeated id")
    lines.append("100103,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,No image")
    lines.append("100104,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Corrupt image")
    (root / "images" / "100104.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    lines.append("100105,Men,Apparel,Headwear,Caps,Red,Fall,2012,NA,Rare values")
    jpg(root / "images" / "100105.jpg", COLOURS["Red"])
    (root / "styles.csv").write_text("\n".join(lines) + "\n")


UNCHANGED = "cmp -s victim victim.orig && echo 'victim unchanged'"
EDIT = ("import torch; from mclfir_lite import checkpoint as c; p = \"{out}/checkpoints/finetune.pt\"; "
        "fp = torch.load(p, weights_only=True)[\"fingerprint\"]; s = c.load(p); {edit}; c.save(p, s, fp)")

# issue 25. The expected text may be a tuple: every piece must be in the output (the row shows
# the line holding the first).
CASES_25 = [
    ("symlinked <out>/.lock", f"mkdir -p s1 && ln -s $PWD/victim s1/.lock && {DEMO} --out s1; echo exit $?; {UNCHANGED}",
     "target overwritten with a PID", 0, ("symbolic link", "exit 2", "victim unchanged")),
    ("symlinked <out>/results.json", f"mkdir -p s2 && ln -s $PWD/victim s2/results.json && {DEMO} --out s2; echo exit $?; "
     f"{UNCHANGED}", "link silently replaced", 0, ("symbolic link", "exit 2", "victim unchanged")),
    ("symlinked checkpoint", f"mkdir -p s3/checkpoints && ln -s $PWD/victim s3/checkpoints/finetune.pt && {DEMO} --out s3; "
     f"echo exit $?; {UNCHANGED}", "link silently replaced", 0, ("symbolic link", "exit 2", "victim unchanged")),
    ("symlinked figure", f"mkdir -p s4 && ln -s $PWD/victim s4/forgetting.png && {DEMO} --out s4; echo exit $?; {UNCHANGED}",
     "PNG written through the link", 0, ("symbolic link", "exit 2", "victim unchanged")),
    ("write probe at its old name (.write-probe-PID)", f"{SNIP} \"exec(open('probe.py').read())\"; {UNCHANGED}",
     "target truncated to 0 bytes", 0, ("exit 0", "victim unchanged")),
    ("doctor's write probe (.doctor-write-test)", f"mkdir -p cache && ln -s $PWD/victim cache/.doctor-write-test && "
     f"{PY} -m mclfir_lite doctor --no-benchmark | grep -m1 'cache'; {UNCHANGED}", "target overwritten with 'ok'", 0,
     ("cache", "victim unchanged")),
    ("one-valued attribute in a table, asked for", f"{TAB} --data-dir t_one/table.csv --increments 'colour;material' --out s5",
     "scored: every AP 1, MeanAP inflated", 2, "removed"),
    ("one-valued attribute in a table, not asked for", f"{TAB} --data-dir t_one/table.csv --increments colour --out s6 2>&1 | grep 'material'",
     "scored", 0, "attribute 'material' removed, never scored"),
    ("--recipe paper with --encoder", f"{DEMO} --recipe paper --encoder smallcnn --out r1", "--encoder dropped, "
     "results.json said smallcnn", 2, "--encoder smallcnn conflicts with --recipe paper"),
    ("--loss triplet with released", f"{DEMO} --loss triplet --strategies released --out r1",
     "ran NT-Xent, recorded triplet", 2, "--loss triplet does not apply to released"),
    ("--domain-shift with real data", f"{REAL} --domain-shift --out r1", "silently ignored", 2,
     "--domain-shift applies to synthfashion only"),
    ("--joint-steps without joint", f"{DEMO} --joint-steps 5 --out r1", "silently ignored", 2,
     "--joint-steps applies to joint only"),
    ("--ema-every without mclfir", f"{DEMO} --ema-every 2 --out r1", "silently ignored", 2,
     "--ema-every applies to mclfir only"),
    ("checkpoint whose history was cut", f"{DEMO} --out s7 > /dev/null 2>&1 && {SNIP} '" +
     EDIT.format(out="s7", edit="s[\"history\"] = s[\"history\"][:1]") + f"' && {DEMO} --out s7",
     "exit 0, bare NaN in results.json", 2, ("checkpoint s7/checkpoints/finetune.pt", "'history'")),
    ("hand-edited checkpoint (done=99)", f"{DEMO} --out s8 > /dev/null 2>&1 && {SNIP} '" +
     EDIT.format(out="s8", edit="s[\"done\"] = 99") + f"' && {DEMO} --out s8", "TypeError traceback", 2,
     ("checkpoint s8/checkpoints/finetune.pt", "'done'")),
    ("--out ''", f"{DEMO} --out ''", "the current folder", 2, "--out is empty"),
    ("MCLFIR_CACHE=''", f"MCLFIR_CACHE= HOME=$PWD/home {DEMO} --out s9 2>&1 | grep -m1 MCLFIR_CACHE; ls -d home/.cache/*",
     "the current folder", 0, ("MCLFIR_CACHE is set but empty", "home/.cache/mclfir_lite")),
    ("MCLFIR_CACHE is a file", f"MCLFIR_CACHE=$PWD/afile {DEMO} --out r1", "'File exists' traceback", 2,
     ("MCLFIR_CACHE", "afile")),
    ("MCLFIR_QUICK=banana", f"MCLFIR_QUICK=banana {SNIP} 'from mclfir_lite.settings import quick_mode; "
     "print(\"quick\", quick_mode())'", "silently off", 0, ("MCLFIR_QUICK='banana' is not understood", "quick False")),
    ("--seed overflow", f"{DEMO} --seed 18446744073709552 --out r1", "OverflowError traceback", 2,
     "--seed must be in 0..4294967295"),
    ("--image-size too large for memory, real data", f"{REAL} --image-size 12000 --out r1",
     "_ArrayMemoryError traceback", 2, ("of memory", "--lazy-images")),
    ("Lab.run(temperature=0)", f"{SNIP} \"exec(open('lab_temp.py').read())\"", "trained, then failed", 0,
     "config.temperature must be a finite number > 0, got 0 (before training: True)"),
    ("never-run runner in a widget", f"{SNIP} \"exec(open('widget.py').read())\"", "'Invalid shape (0,)'", 0,
     "run it first"),
    ("--no-progress and the preparer", f"MCLFIR_CACHE=$PWD/cache_np {REAL} --out s10 > o10 2>&1; echo exit $?, "
     "progress bars: $(grep -c 'it/s' o10)", "the preparer's bar shown", 0, ("exit 0", "progress bars: 0")),
    ("a second command with other --strategies", f"{DEMO} --out s11 > /dev/null 2>&1; "
     f"{DEMO} --strategies frozen --out s11 > /dev/null 2>&1; {SNIP} 'import json; "
     "print(\"strategies\", sorted(json.load(open(\"s11/results.json\"))[\"strategies\"]))'",
     "the first strategy dropped", 0, "strategies ['finetune', 'frozen']"),
    ("someone else's results.json in --out", "mkdir -p s12 && echo '{\"accuracy\": 0.9}' > s12/results.json && "
     f"{DEMO} --out s12; echo exit $?; cat s12/results.json", "silently replaced", 0,
     ("did not write", "exit 2", "{\"accuracy\": 0.9}")),
    ("truncated image cache (.npy)", f"export MCLFIR_CACHE=$PWD/cache_tr; {TAB} --data-dir t_ok/table.csv --increments colour --out s13 "
     "> /dev/null 2>&1; f=$(ls cache_tr/images/*.npy); head -c 200 $f > cut && cat cut > $f; "
     f"{TAB} --data-dir t_ok/table.csv --increments colour --out s14; echo exit $?", "error naming no file; --rebuild the same", 0,
     ("cache_tr/images/", "is damaged", "exit 0")),
    ("image cache holding a pickle", f"export MCLFIR_CACHE=$PWD/cache_pk; {TAB} --data-dir t_ok/table.csv --increments colour --out s15 "
     f"> /dev/null 2>&1; f=$(ls cache_pk/images/*.npy); {PY} -c \"import pickle; pickle.dump({{'x': 1}}, open('$f', 'wb'))\"; "
     f"{TAB} --data-dir t_ok/table.csv --increments colour --out s16; echo exit $?", "error naming no file", 0,
     ("cache_pk/images/", "is damaged", "exit 0")),
    ("--rebuild on a table CSV", f"{TAB} --data-dir t_ok/table.csv --increments colour --out s17 --rebuild", "refused", 0, "wrote s17/results.json"),
    ("--rebuild with synthfashion", f"{DEMO} --out s18 --rebuild", "refused", 0, "wrote s18/results.json"),
    ("notes.txt and --out added inside a real dataset's folder", f"export MCLFIR_CACHE=$PWD/cache_n; {REAL.replace('fpi', 'fpi_n')} "
     "--out fpi_n/runs/s19 > /dev/null 2>&1; echo notes > fpi_n/notes.txt; "
     f"{REAL.replace('fpi', 'fpi_n')} --out fpi_n/runs/s19; echo exit $?; echo prepared folders: $(ls cache_n/prepared | wc -l)",
     "prepared again each run, resume refused", 0, ("exit 0", "prepared folders: 1")),
    ("symlinked images/ folder, image repaired behind the link", f"{SNIP} \"exec(open('linked.py').read())\"",
     "stale table", 0, "before False after True"),
    ("table CSV saved by Excel (BOM)", f"{TAB} --data-dir t_bom/table.csv --increments colour --out s20", "missing column 'image'", 0, "wrote s20/results.json"),
    ("latin-1 table CSV", f"{TAB} --data-dir t_latin1/table.csv --increments colour --out r1", "codec error, no file named", 2,
     ("t_latin1/table.csv", "line 2")),
]

# found by a bad-input hunt (2026-12-08): the crossmodal and composed commands' own output folder and options
XM = f"{PY} -m mclfir_lite crossmodal --quick --steps 2 --n-train 64 --n-gallery 40 --image-size 16 --strategies finetune"
CP = f"{PY} -m mclfir_lite composed --quick --steps 2 --n-train 64 --image-size 16 --methods sum"
CASES_HUNT = [
    ("crossmodal --out holding a demo's results.json", f"{DEMO} --out x1 && {XM} --out x1; echo exit $?; "
     "grep -o mclfir_lite.results x1/results.json", "replaced by crossmodal's", 0,
     ("the crossmodal command did not write", "exit 2", "mclfir_lite.results")),
    ("crossmodal again with other strategies", f"{XM} --out x2 && {XM} --strategies bct --out x2",
     "the first run's results replaced", 2, "other options (strategies: ['finetune'] then, ['bct'] now)"),
    ("crossmodal --n-gallery 1", f"{XM} --n-gallery 1 --out x3", "AP 0 averaged in", 2, "--n-gallery 1 is too small"),
    ("composed --n-test 1", f"{CP} --n-test 1 --out x4", "R@50 1.000 on 19 images", 2, "any ranking would score 1"),
    ("crossmodal --seed overflow", f"{XM} --seed 99999999999999999999 --out x5", "Overflow, nothing named", 2,
     "--seed must be in 0..4294967295"),
    ("composed --image-size 100000", f"{CP} --image-size 100000 --out x6", "21.8 TiB allocation error", 2,
     "choose a smaller --image-size"),
    ("open_clip model typo", f"{DEMO} --encoder open_clip:ViT-B-3:openai --out x7",
     "EfficientNet-Lite0 trained, the network blamed", 2, "open_clip has no model 'ViT-B-3' (did you mean ViT-B-32"),
    ("results.json with a field of the wrong type", "mkdir -p x8 && echo '{\"format\": \"mclfir_lite.results\", "
     f"\"strategies\": {{}}, \"run\": \"abc\"}}' > x8/results.json && {DEMO} --out x8", "AttributeError traceback", 2,
     "its field(s) run are not of the kind mclfir_lite writes"),
    ("--dataset table without --increments", f"{TAB} --data-dir t_one/table.csv --out x9",
     "unknown attribute(s) ['length']", 2, "--dataset table needs --increments"),
]

ALL_CASES = CASES + CASES_25 + CASES_HUNT   # numbered 1.. in this order, as in the doc's table

# a subset that runs in about two minutes (nothing is trained: each is refused, or read, before
# any training): `--fast`, what tests/test_robustness_doc.py runs in CI
FAST = {"unknown strategy", "unknown attribute", "empty increment", "--steps 0", "--seed -1", "--out is a file",
        "symlinked <out>/.lock", "symlinked <out>/results.json", "symlinked checkpoint", "symlinked figure",
        "one-valued attribute in a table, asked for", "--recipe paper with --encoder", "--loss triplet with released",
        "--joint-steps without joint", "--ema-every without mclfir", "--out ''", "MCLFIR_CACHE is a file",
        "MCLFIR_QUICK=banana", "--seed overflow", "Lab.run(temperature=0)", "never-run runner in a widget",
        "latin-1 table CSV", "crossmodal --n-gallery 1", "composed --n-test 1", "crossmodal --seed overflow",
        "composed --image-size 100000", "open_clip model typo", "results.json with a field of the wrong type",
        "--dataset table without --increments"}

PAYLOAD = """
class P:
    def __reduce__(self):
        return (exec, ("open('marker', 'w').write('code ran')",))
"""

LAB_CAPS = """
from mclfir_lite.config import Config
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.lab.lab import Lab
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
from mclfir_lite.config import Config
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.lab.lab import Lab
t = synthfashion_table(n=240, size=16)
lab = Lab.from_table(t, [['colour']], Config(steps_per_attribute=2, batch_size=16, encoder_width=8), True, 16)
r = lab.runner('finetune', cache=False, progress=False)
r.checkpoint = __import__('pathlib').Path('v.pt')
r.run()
mclfir_lite.settings.__version__ = '0.2.0'
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
from mclfir_lite.data.realdata import load_prepared
names = lambda t: {Path(p).name for p in t.images}
before = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_r', quiet=True, min_count=2))
Image.new('RGB', (12, 16), (255, 0, 0)).save('fpi_r/images/100104.jpg')
after = '100104.jpg' in names(load_prepared('fashion-product-images', 'fpi_r', quiet=True, min_count=2))
print('before', before, 'after', after)
"""


def fixtures(w: Path) -> None:
    from PIL import Image
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
    # issue 25
    for name in ("victim", "victim.orig"):
        (w / name).write_bytes(b"precious bytes that are not ours\n")
    (w / "probe.py").write_text(PROBE)
    (w / "lab_temp.py").write_text(LAB_TEMP)
    (w / "widget.py").write_text(WIDGET)
    (w / "linked.py").write_text(LINKED)
    write_table(w / "t_one")
    write_table(w / "t_ok")
    write_table(w / "t_bom", encoding="utf-8-sig")
    write_table(w / "t_latin1", encoding="latin-1", material="cr\u00e8me")
    write_fpi(w / "fpi_n", n=456)
    write_fpi(w / "disk")                 # its images/ moved below, fpi_l/images links to it
    (w / "fpi_l").mkdir()
    (w / "disk" / "styles.csv").rename(w / "fpi_l" / "styles.csv")
    (w / "fpi_l" / "images").symlink_to(w / "disk" / "images")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default=None, help="comma-separated case numbers (1-based)")
    p.add_argument("--fast", action="store_true", help="only the cases of FAST (about two minutes)")
    p.add_argument("--scratch", default=None, help="an empty folder for the fixtures (default: a new temp folder)")
    args = p.parse_args()
    only = {int(x) for x in args.only.split(",")} if args.only else None
    w = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="mclfir-robustness-"))
    w.mkdir(parents=True, exist_ok=True)
    fixtures(w)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MCLFIR_CACHE": str(w / "cache"), "OMP_NUM_THREADS": "1"}
    print("| # | case | command | before | now | ok |\n|---|---|---|---|---|---|")
    failed = ran = 0
    for k, (case, cmd, before, rc_want, text) in enumerate(ALL_CASES, start=1):
        if (only and k not in only) or (args.fast and case not in FAST):
            continue
        ran += 1
        cmd = cmd.replace("data_scripts/", f"{ROOT}/data_scripts/")
        t0 = time.perf_counter()
        res = subprocess.run(["bash", "-c", cmd], cwd=w, env=env, capture_output=True, text=True, timeout=600)
        out = res.stdout + res.stderr
        texts = text if isinstance(text, tuple) else (text,)
        text = texts[0]
        ok = res.returncode == rc_want and all(t in out for t in texts)
        failed += not ok
        last = out.strip().splitlines()[-1] if out.strip() else ""
        lines = []   # the (last) line holding each expected piece, or the last line
        for t in texts:
            line = next((ln.strip() for ln in out.splitlines()[::-1] if t in ln), last)
            if line not in lines:
                lines.append(line if len(line) <= 160 else line[:157] + "...")
        shown = " / ".join(lines).replace(str(w) + "/", "").replace(PY, "python").replace("|", "\\|")
        short = cmd.replace(str(ROOT) + "/", "")
        for full, abbr in ((TAB, "$TAB"), (REAL, "$REAL"), (DEMO, "$DEMO"), (PREP, "$PREP"), (XM, "$XM"), (CP, "$CP")):
            short = short.replace(full.replace(str(ROOT) + "/", ""), abbr)
        short = short.replace(PY, "python").replace("|", "\\|")
        print(f"| {k} | {case} | `{short}` | {before} | exit {res.returncode}: {shown} "
              f"({time.perf_counter() - t0:.0f} s) | {'yes' if ok else 'NO'} |", flush=True)
    print(f"\n{failed} case(s) not as expected; scratch folder {w}", file=sys.stderr)
    assert not args.fast or ran == len(FAST), f"FAST names {len(FAST)} cases, {ran} ran: a name is wrong"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
