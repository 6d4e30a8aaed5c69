"""Label reviews with a checkpoint: `python predict.py ckpt_path=CKPT text="..."`, `file=reviews.txt`
(`file=-`: standard input) or `file=reviews.csv column=review`; `output=labels.csv` writes a file."""

import sys
from pathlib import Path

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation: importing lightning makes one

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error, refuse_null_groups  # noqa: E402
from rnnlab.predict import quote_text_overrides, run  # noqa: E402
from rnnlab.sweeps import register_resolvers  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        tune_process(cfg.runtime)
        run(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    sys.argv[1:] = quote_text_overrides(sys.argv[1:])  # a review reads as typed, commas included
    main()
