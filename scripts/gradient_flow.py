"""Measure the vanishing gradient: `python scripts/gradient_flow.py` (conf/gradient_flow.yaml).

Trains RNN, GRU, LSTM and BiLSTM briefly on an IMDB slice (or loads `+ckpt.<name>=CKPT`) and
writes one PNG of ||dL/dh_t|| against steps from the end, at initialization and after training.
"""

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error  # noqa: E402
from rnnlab.gradient_flow import compare  # noqa: E402
from rnnlab.sweeps import register_resolvers  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402

register_resolvers()  # conf/hydra/default.yaml names the run directory with them


@hydra.main(version_base="1.3", config_path="../conf", config_name="gradient_flow")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # e.g. a model family it cannot read: one paragraph, exit 1
        tune_process(cfg.runtime)
        compare(cfg)


if __name__ == "__main__":
    main()
