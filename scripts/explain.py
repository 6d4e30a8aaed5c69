"""Gate pictures: `python scripts/explain.py ckpt_path=CKPT text="..." output=explain.png`.

Writes one PNG for one review: the words along x, the LSTM's mean forget, input and output gate
per word, and the model's positive probability had the review ended at each word.
"""

import sys

import hydra
from omegaconf import DictConfig

from rnnlab.explain import run
from rnnlab.predict import quote_text_overrides


@hydra.main(version_base="1.3", config_path="../conf", config_name="explain")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    sys.argv[1:] = quote_text_overrides(sys.argv[1:])  # a review reads as typed, commas included
    main()
