"""Every config group option composes and instantiates."""

import itertools

import hydra
import pytest
from omegaconf import OmegaConf

from sparse_maml.algorithms import ALGORITHMS
from sparse_maml.callbacks import CPUThreads
from sparse_maml.data import EpisodicDataModule
from sparse_maml.module import MetaLearner
from sparse_maml.presets import presets
from sparse_maml.run import build_module

from .app_helpers import CONF, compose_config


def options(group):
    """A group's selectable options; files starting with ``_`` are bases the options inherit."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


def test_every_algorithm_has_a_config():
    assert set(options("algo")) == set(ALGORITHMS)


@pytest.mark.parametrize("algo", options("algo"))
@pytest.mark.parametrize("model", options("model"))
def test_algo_and_model_build_a_module(algo, model):
    cfg = compose_config([f"algo={algo}", f"model={model}"])
    module = build_module(cfg, (3, 32, 32), [0.5] * 3, [0.25] * 3)
    assert isinstance(module, MetaLearner) and module.algo.name == algo
    assert module.hparams.config["algo"]["name"] == algo


@pytest.mark.parametrize("data", options("data"))
def test_data_instantiates(data):
    overrides = [f"data={data}"] + (["data.root=/somewhere"] if data == "folder" else [])
    dm = hydra.utils.instantiate(compose_config(overrides).data)
    assert isinstance(dm, EpisodicDataModule) and dm.n_way == 5


@pytest.mark.parametrize("trainer", options("trainer"))
@pytest.mark.parametrize("logger", options("logger"))
def test_trainer_logger_callbacks_compose(trainer, logger):
    cfg = compose_config([f"trainer={trainer}", f"logger={logger}"])
    assert cfg.trainer.inference_mode is False  # adaptation at evaluation needs autograd
    loggers = [hydra.utils.instantiate(c) for c in (cfg.logger or {}).values()]
    assert len(loggers) == (0 if logger == "none" else 1)
    if logger == "wandb":
        assert cfg.logger.wandb.mode == "offline"
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    assert len(callbacks) == 9
    if trainer == "cpu":  # the gpu and ddp presets need hardware this machine may not have
        hydra.utils.instantiate(cfg.trainer, logger=False)


PAPER = [e for e in presets(CONF) if e.startswith(("table1/", "paper/"))]
OMNIGLOT = [e for e in presets(CONF) if e.startswith("omniglot/")]


def test_presets_are_in_folders_and_each_is_tested():
    """``conf/experiment`` holds folders only; every preset in them composes in a test here or in
    test_official_presets.py, and every ``_`` base is inherited by a preset."""
    assert sorted(p.name for p in (CONF / "experiment").iterdir()) == ["official", "omniglot", "paper", "table1"]
    official = [e for e in presets(CONF) if e.startswith("official/")]
    assert len(official) == 19 and len(PAPER) == 14 and len(OMNIGLOT) == 19
    assert sorted([*official, *PAPER, *OMNIGLOT]) == presets(CONF)
    files = list((CONF / "experiment").rglob("*.yaml"))
    bases = {p.relative_to(CONF / "experiment").with_suffix("").as_posix() for p in files if p.name.startswith("_")}
    used = {b for b in bases for p in files if f"- /experiment/{b}\n" in p.read_text()}
    assert bases and used == bases, f"bases no preset inherits: {bases - used}"


@pytest.mark.parametrize("experiment", PAPER)
def test_experiments_compose(experiment):
    cfg = compose_config([f"experiment={experiment}", "data.root=/data/miniimagenet"])
    assert cfg.trainer.max_epochs == 400
    assert cfg.data.dataset == "miniimagenet" and cfg.data.n_way == 5
    if experiment.startswith("table1/"):
        assert cfg.data.meta_batch_size == (4 if "1shot" in experiment else 2)
    if experiment == "table1/sparse_maml_5shot":
        assert (cfg.algo.name, cfg.algo.inner_steps, cfg.algo.inner_lr) == ("sparse_maml", 35, 0.5)
    OmegaConf.resolve(cfg)
    build_module(cfg, (3, 84, 84), [0.5] * 3, [0.25] * 3)
    hydra.utils.instantiate(cfg.data)


@pytest.mark.parametrize("experiment", OMNIGLOT)
def test_omniglot_sweeps_compose(experiment):
    """Every run of each CPU-scale claim sweep composes and builds (the sweep values are valid keys)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.data.dataset == "omniglot" and cfg.data.image_size == 28
    # the run plan's budgets (docs/RESULTS.md): head-to-head >= 3,000 meta-iterations, sweeps >= 1,000
    iterations = cfg.trainer.max_epochs * cfg.data.train_batches_per_epoch
    family = experiment.split("/")[1].split("_")[0]
    assert iterations >= {"h2h": 3000, "sweep": 1000}.get(family, 300)
    assert cfg.task_name == experiment  # its runs in outputs/omniglot/<name>/ and multirun/omniglot/<name>/
    assert cfg.hydra.sweep.dir == f"multirun/{cfg.task_name}"
    params = dict(cfg.hydra.sweeper.params or {})
    assert experiment == "omniglot/cpu" or params, "a claim preset sweeps something"
    for values in itertools.product(*(str(v).split(",") for v in params.values())):
        run = compose_config([f"experiment={experiment}", *(f"{k}={v}" for k, v in zip(params, values))])
        OmegaConf.resolve(run)
        build_module(run, (1, 28, 28), [0.5], [0.25])


def test_eval_config_composes():
    cfg = compose_config(["ckpt_path=x.ckpt", "data=omniglot"], name="eval")
    assert cfg.num_test_tasks == 300 and cfg.data.dataset == "omniglot"
    assert compose_config(["ckpt_path=x.ckpt"], name="eval").get("data") is None
    # evaluate.py sets PyTorch's threads as train.py does (one definition, conf/callbacks/cpu_threads.yaml)
    [threads] = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    assert isinstance(threads, CPUThreads) and "cpu_threads" in compose_config([]).callbacks


def test_invalid_override_is_a_clear_error():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="algo"):
        compose_config(["algo=reptile"])
    with pytest.raises(ConfigCompositionException, match="inner_stepz"):
        compose_config(["algo.inner_stepz=3"])


@pytest.mark.parametrize(
    ("name", "hint"),
    [("omniglot_h2h", "did you mean experiment=omniglot/h2h?"), ("official/nothing", "experiment=FOLDER/NAME")],
)
def test_a_preset_name_that_is_not_there_names_the_folders(name, hint):
    from sparse_maml.checks import ConfigError
    from sparse_maml.presets import check_experiments

    check_experiments(["-m", "experiment=omniglot/h2h,official/sparse_maml_conv4_5shot", "seed=0"], CONF)
    with pytest.raises(ConfigError, match=r"official/, omniglot/, paper/, table1/") as error:
        check_experiments(["-m", f"experiment=omniglot/sweep,{name}"], CONF)
    assert f"experiment={name}: no such preset" in str(error.value) and hint in str(error.value)
