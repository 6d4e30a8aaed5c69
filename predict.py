"""Label reviews with a checkpoint: `python predict.py ckpt_path=CKPT text="..."` or `file=reviews.txt`."""

import hydra
from omegaconf import DictConfig

from rnnlab.predict import run


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
