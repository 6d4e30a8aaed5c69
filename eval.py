"""Test a checkpoint: `python eval.py ckpt_path=outputs/runs/.../checkpoints/last.ckpt`."""

import hydra
from omegaconf import DictConfig

from rnnlab.evaluate import run


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
