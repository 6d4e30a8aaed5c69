"""Test a checkpoint: `python eval.py ckpt_path=outputs/runs/.../checkpoints/last.ckpt`."""

import sys
from pathlib import Path

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation: importing lightning makes one

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error, refuse_null_groups  # noqa: E402
from rnnlab.evaluate import run  # noqa: E402
from rnnlab.sweeps import register_resolvers  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        tune_process(cfg.runtime)
        run(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    main()
