"""Train a recurrent sentiment classifier: `python train.py model=bilstm` (see conf/train.yaml)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnlab.errors import exit_on_error, refuse_null_groups
from rnnlab.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        return run(cfg)


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    main()
