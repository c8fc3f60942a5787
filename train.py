"""Meta-train an algorithm: python train.py algo=sparse_maml [model=...] [data=...] [trainer=...] [key=value ...]"""

import sys

import hydra
from omegaconf import DictConfig

from sparse_maml import ddp
from sparse_maml.finished import finished_results
from sparse_maml.logs import get_logger
from sparse_maml.preemption import Preempted
from sparse_maml.presets import check_experiments
from sparse_maml.run import train
from sparse_maml.user_errors import bad_input_as_message

log = get_logger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    with bad_input_as_message():
        results = finished_results(cfg.paths.output_dir) if cfg.skip_finished else None
        if results is not None:
            accuracy = results.get("accuracy", float("nan"))
            done = f"finished already, not trained again: {cfg.paths.output_dir} (test accuracy {accuracy:.4%})"
            log.info(done)
        else:
            try:
                results = train(cfg)
            except Preempted as stop:  # the cluster's warning: saved, now end as the signal would have
                print(stop, file=sys.stderr)
                sys.exit(stop.exit_status)
        # The returned value is what Hydra sweepers optimise.
        return results.get("accuracy", float("nan"))


if __name__ == "__main__":
    sys.argv = ddp.job_argv(sys.argv)  # a DDP rank started by Lightning runs its parent's job, not its sweep
    with bad_input_as_message():
        check_experiments(sys.argv[1:])
    main()
