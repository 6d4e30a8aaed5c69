"""Measure the vanishing gradient: `python scripts/gradient_flow.py` (conf/gradient_flow.yaml).

Trains RNN, GRU, LSTM and BiLSTM briefly on an IMDB slice (or loads `+ckpt.<name>=CKPT`) and
writes one PNG of ||dL/dh_t|| against steps from the end, at initialization and after training.
"""

import hydra
from omegaconf import DictConfig

from rnnlab.errors import exit_on_error
from rnnlab.gradient_flow import compare


@hydra.main(version_base="1.3", config_path="../conf", config_name="gradient_flow")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # e.g. a model family it cannot read: one paragraph, exit 1
        compare(cfg)


if __name__ == "__main__":
    main()
