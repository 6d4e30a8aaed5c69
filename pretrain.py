"""Pretrain a language model on the unlabeled reviews: `python pretrain.py` (conf/pretrain.yaml).

    python pretrain.py data.path=../shared/data/aclImdb_v1.tar.gz               # lm=small
    python pretrain.py experiment=ulmfit lm.direction=backward data.path=...
    python pretrain.py ... ckpt_path=<run dir>/checkpoints/last.ckpt hydra.run.dir=<run dir>

Then fine-tune: `python train.py experiment=ulmfit pretrained=<run dir>/checkpoints/epoch_NNN.ckpt`
(docs/pretraining.md).
"""

import sys
from pathlib import Path

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation: importing lightning makes one

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error, refuse_null_groups  # noqa: E402
from rnnlab.pretrain import pretrain  # noqa: E402
from rnnlab.sweeps import register_resolvers  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402

register_resolvers()  # conf/hydra/default.yaml names run directories with them


@hydra.main(version_base="1.3", config_path="conf", config_name="pretrain")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error():  # a user's mistake: one paragraph on stderr, exit status 1
        tune_process(cfg.runtime)
        return pretrain(cfg).get("val/loss")


if __name__ == "__main__":
    refuse_null_groups(sys.argv[1:], Path(__file__).parent / "conf")
    main()
