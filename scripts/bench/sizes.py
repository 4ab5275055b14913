"""sizes.py FILE...: prints "files bytes gzip9_bytes" for the given files."""
import gzip
import sys

files = sys.argv[1:]
total = gz = 0
for name in files:
    with open(name, "rb") as f:
        data = f.read()
    total += len(data)
    gz += len(gzip.compress(data, 9, mtime=0))
print(len(files), total, gz)
