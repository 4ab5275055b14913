"""sibling_sizes.py OUTDIR: prints "br_bytes gz_bytes", the sizes of the .br and .gz siblings of the
fingerprinted files listed in OUTDIR/staticfiles.json (WhiteNoise also compresses the unhashed
copies collectstatic leaves; those are not counted, so both tools are compared on the same files)."""
import json
import os
import sys

out = sys.argv[1]
paths = json.load(open(os.path.join(out, "staticfiles.json")))["paths"].values()
sizes = {".br": 0, ".gz": 0}
for p in paths:
    for ext in sizes:
        f = os.path.join(out, p + ext)
        if os.path.exists(f):
            sizes[ext] += os.path.getsize(f)
print(sizes[".br"], sizes[".gz"])
