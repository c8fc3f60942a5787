"""Meta-train an algorithm: python train.py algo=sparse_maml [model=...] [data=...] [trainer=...] [key=value ...]"""

import json
import os
import sys

import hydra
from omegaconf import DictConfig

from sparse_maml.run import DDP_JOB_ENV, train


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # The returned value is what Hydra sweepers optimise.
    return train(cfg).get("accuracy", float("nan"))


if __name__ == "__main__":
    if os.environ.get("LOCAL_RANK", "0") != "0" and DDP_JOB_ENV in os.environ:
        # A DDP rank started by Lightning with the parent's command line: run the parent's job, not its sweep.
        rank = os.environ["LOCAL_RANK"]
        sys.argv = [sys.argv[0], *json.loads(os.environ[DDP_JOB_ENV]), f"hydra.job.name=train_ddp_process_{rank}"]
    main()
