"""Test accuracy against the number of labelled training reviews, one curve per DIR:
`python scripts/learning_curve.py DIR [DIR ...] --out OUT` (rnnlab.learning_curve)."""

import sys

from rnnlab.learning_curve import main

if __name__ == "__main__":
    sys.exit(main())
