"""`python -m kiln ARGS`: run the bundled kiln executable with ARGS, exiting with its status."""

from __future__ import annotations

import os
import sys

from kiln import find_bin


def main() -> None:
    try:
        kiln = os.fsdecode(find_bin())
    except FileNotFoundError as e:
        sys.exit(f"kiln: error: {e}")
    argv = [kiln, *sys.argv[1:]]
    if sys.platform == "win32":
        import subprocess

        sys.exit(subprocess.run(argv).returncode)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(kiln, argv)


if __name__ == "__main__":
    main()
