"""sibling_sizes.py OUTDIR: prints "br gz map_br map_gz", the sizes of the .br and .gz siblings of the
fingerprinted files listed in OUTDIR/staticfiles.json, source maps counted apart (kiln compresses
maps at fast levels on purpose: only developer tools fetch them). WhiteNoise also compresses the
unhashed copies collectstatic leaves; those are not counted, so both tools are compared on the
same files."""
import json
import os
import sys

out = sys.argv[1]
paths = json.load(open(os.path.join(out, "staticfiles.json")))["paths"].values()
sizes = {(ext, is_map): 0 for ext in (".br", ".gz") for is_map in (False, True)}
for p in paths:
    for ext in (".br", ".gz"):
        f = os.path.join(out, p + ext)
        if os.path.exists(f):
            sizes[(ext, p.endswith(".map"))] += os.path.getsize(f)
print(sizes[(".br", False)], sizes[(".gz", False)], sizes[(".br", True)], sizes[(".gz", True)])
