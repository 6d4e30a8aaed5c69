"""Train a recurrent sentiment classifier: `python train.py model=bilstm` (see conf/train.yaml)."""

import sys
from pathlib import Path

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation: importing lightning makes one

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error, refuse_null_groups  # noqa: E402
from rnnlab.sweeps import register_resolvers  # noqa: E402
from rnnlab.train import run  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402

register_resolvers()  # conf/hydra/default.yaml names run directories with them


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        tune_process(cfg.runtime)  # in each sweep job's own process too (joblib, submitit)
        return run(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    main()
