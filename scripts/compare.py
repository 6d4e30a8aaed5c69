"""Compare training runs: `python scripts/compare.py DIR [DIR ...] [--out OUT] [--no-pairs]`.

Each DIR is a run directory or a folder above run directories (a sweep, `outputs/`). Writes
comparison.md, comparison.csv, comparison.json and comparison.png into --out (by default the
DIR, or ./comparison for several). The code, and what each file holds, is in rnnlab.compare;
docs/compare.md is the reference.
"""

import sys

from rnnlab.compare import main

if __name__ == "__main__":
    sys.exit(main())
