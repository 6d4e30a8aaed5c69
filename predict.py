"""Label reviews with a checkpoint: `python predict.py ckpt_path=CKPT text="..."`, `file=reviews.txt`
(`file=-`: standard input) or `file=reviews.csv column=review`; `output=labels.csv` writes a file."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.errors import exit_on_error, refuse_null_groups
from rnnlab.predict import quote_text_overrides, run


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        run(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    sys.argv[1:] = quote_text_overrides(sys.argv[1:])  # a review reads as typed, commas included
    main()
