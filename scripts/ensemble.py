"""Average the test predictions of several runs, e.g. ULMFiT's forward and backward classifiers:
`python scripts/ensemble.py RUN_OR_SWEEP RUN_OR_SWEEP ... --out DIR` (rnnlab.ensemble)."""

import sys

from rnnlab.ensemble import main

if __name__ == "__main__":
    sys.exit(main())
