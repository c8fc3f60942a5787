"""Evaluate a checkpoint on the fixed test episodes: python evaluate.py ckpt_path=PATH [data=...]"""

import hydra
from omegaconf import DictConfig

from sparse_maml.run import evaluate
from sparse_maml.user_errors import bad_input_as_message


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with bad_input_as_message():
        evaluate(cfg)


if __name__ == "__main__":
    main()
