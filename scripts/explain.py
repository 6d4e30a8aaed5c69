"""Gate pictures: `python scripts/explain.py ckpt_path=CKPT text="..." output=explain.png`.

Writes one PNG for one review: the words along x, the LSTM's mean forget, input and output gate
per word, and the model's positive probability had the review ended at each word.
"""

import sys

from rnnlab.runtime import use_huge_pages

use_huge_pages()  # before torch's first allocation

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rnnlab.errors import exit_on_error  # noqa: E402
from rnnlab.explain import run  # noqa: E402
from rnnlab.predict import quote_text_overrides  # noqa: E402
from rnnlab.tuning import tune_process  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="explain")
def main(cfg: DictConfig) -> None:
    with exit_on_error():  # e.g. a model family it cannot read: one paragraph, exit 1
        tune_process(cfg.runtime)
        run(cfg)


if __name__ == "__main__":
    sys.argv[1:] = quote_text_overrides(sys.argv[1:])  # a review reads as typed, commas included
    main()
