"""Meta-train an algorithm: python train.py algo=sparse_maml [model=...] [data=...] [trainer=...] [key=value ...]"""

import hydra
from omegaconf import DictConfig

from sparse_maml.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # The returned value is what Hydra sweepers optimise.
    return train(cfg).get("accuracy", float("nan"))


if __name__ == "__main__":
    main()
