"""Every ``official/*`` preset is the run it names: its resolved values equal the settings transcribed here from the
authors' script (Johswald/learning_where_to_learn, run_sparse_MAML.sh at 390c470, with parser.py's defaults) and,
for the MAML, ANIL and BOIL rows of the authors' README, from their sources' code."""

import json
import re

import pytest
from omegaconf import OmegaConf

from sparse_maml.optimizers import NAMED
from sparse_maml.presets import presets
from sparse_maml.run import build_module, train

from .app_helpers import CONF, compose_config
from .data.helpers import write_mini_pickle

# run_sparse_MAML.sh, its training lines by line number, less the flags that do not change the run (--tensorboard,
# --checkpoint_models, --test_start: the best validation model is tested). Lines 12 and 20 (sparse-MAML PLUS, a
# hypernetwork mask) have no preset.
SCRIPT = {
    8: "--epochs=400 --batches_train=100 --batches_test=500 --batches_val=500 --batch_size=2 --num_shots_train=5 "
    "--gradient_mask --step_size=0.25 --mask_lr=0.0075 --gradient_steps=35 --val_start=100 --kaiming_init "
    "--val_after 5",
    16: "--epochs=400 --batches_train=100 --batches_test=500 --batches_val=500 --batch_size=2 --num_shots_train=5 "
    "--gradient_mask --step_size=0.1 --mask_lr=0.0075 --gradient_steps=35 --val_start=100 --kaiming_init --val_after 5",
    24: "--epochs=40 --batches_train=1000 --batches_test=500 --batches_val=500 --batch_size=1 --num_shots_train=5 "
    "--gradient_mask --step_size=0.05 --mask_lr=0.01 --gradient_steps=35 --val_start=10 --val_after 1 --resnet "
    "--no_bn_in_inner_loop --meta_relu_through --meta_constant_init --clamp_outer_gradients",
    27: "--epochs=40 --batches_train=1000 --batches_test=500 --batches_val=500 --batch_size=1 --num_shots_train=5 "
    "--gradient_mask --step_size=0.05 --mask_lr=0.01 --gradient_steps=35 --val_start=10 --val_after 1 --resnet "
    "--no_bn_in_inner_loop --clamp_outer_gradients",
    31: "--epochs=40 --batches_train=1000 --batches_test=500 --batches_val=500 --batch_size=1 --num_shots_train=1 "
    "--gradient_mask --step_size=0.01 --mask_lr=0.01 --gradient_steps=35 --val_start=10 --val_after 1 --resnet "
    "--no_bn_in_inner_loop --meta_relu_through --meta_constant_init --clamp_outer_gradients",
    35: "--epochs=40 --batches_train=1000 --batches_test=500 --batches_val=500 --batch_size=1 --num_shots_train=1 "
    "--gradient_mask --step_size=0.05 --mask_lr=0.01 --gradient_steps=35 --val_start=10 --val_after 1 --resnet "
    "--no_bn_in_inner_loop --clamp_outer_gradients",
}
# parser.py's defaults for what the lines leave out
PARSER_DEFAULTS = (
    "--lr=0.001 --num_ways=5 --num_shots_test=15 --gradient_steps_test=35 --hidden_size=64 --init_shift=0.0 "
    "--optimizer_theta=ADAM --optimizer_mask=ADAM"
)
#: the clamp bound of --clamp_outer_gradients: the published train.py names none (see official/_resnet12.yaml)
CLAMP = 10.0

# preset: (script line, flags changed from it)
FROM_SCRIPT = {
    "official/sparse_maml_conv4_5shot": (8, ""),
    "official/sparse_maml_conv4_1shot": (16, "--num_shots_train=1"),  # the line's 5 is a slip: it is the 1-shot run
    # no Conv4 line for sparse-ReLU-MAML: the Conv4 line with the flags the ResNet-12 sparse-ReLU-MAML lines add
    "official/sparse_relu_maml_conv4_5shot": (8, "--meta_relu_through --meta_constant_init"),
    "official/sparse_relu_maml_conv4_1shot": (16, "--num_shots_train=1 --meta_relu_through --meta_constant_init"),
    "official/sparse_relu_maml_resnet12_5shot": (24, ""),
    "official/sparse_maml_resnet12_5shot": (27, ""),
    "official/sparse_relu_maml_resnet12_1shot": (31, ""),
    "official/sparse_maml_resnet12_1shot": (35, ""),
}

# MAML's code (cbfinn/maml, main.py): usage lines for 5-way 1-/5-shot miniImageNet, flag defaults, first order
FINN_2017 = {
    "model.name": "conv4",
    "model.hidden": 32,
    "algo.inner_lr": 0.01,
    "algo.inner_steps": 5,
    "algo.inner_steps_test": 10,
    "algo.lr": 0.001,
    "data.meta_batch_size": 4,
    "data.k_query": 15,
    "data.num_test_tasks": 600,
    "meta_iterations": 60000,
}
# BOIL's code (HJ-Yoo/BOIL at f44bdb2: main.py, maml/utils.py, run_4conv.sh, run_resnet.sh; 1000 test tasks: README)
OH_2021 = {
    "algo.name": "boil",
    "algo.inner_steps": 1,
    "algo.inner_steps_test": 1,
    "algo.first_order": False,
    "data.meta_batch_size": 4,
    "data.k_query": 15,
    "data.num_val_tasks": 100,
    "data.num_test_tasks": 1000,
    "trainer.check_val_every_n_epoch": 1,
    "meta_iterations": 30000,
}
FROM_SOURCES = {
    "official/maml_conv4_5shot": {**FINN_2017, "algo.name": "fomaml", "data.k_shot": 5},
    "official/maml_conv4_1shot": {**FINN_2017, "algo.name": "fomaml", "data.k_shot": 1},
    # ANIL's own settings were not found: MAML's, with ANIL's second-order head-only loop
    "official/anil_conv4_5shot": {**FINN_2017, "algo.name": "anil", "algo.first_order": None, "data.k_shot": 5},
    "official/anil_conv4_1shot": {**FINN_2017, "algo.name": "anil", "algo.first_order": None, "data.k_shot": 1},
    "official/boil_conv4_5shot": {
        **OH_2021,
        "model.name": "conv4",
        "model.hidden": 64,
        "algo.inner_lr": 0.5,
        "algo.lr": 0.001,
        "data.k_shot": 5,
    },  # fmt: skip
    "official/boil_conv4_1shot": {
        **OH_2021,
        "model.name": "conv4",
        "model.hidden": 64,
        "algo.inner_lr": 0.5,
        "algo.lr": 0.001,
        "data.k_shot": 1,
    },  # fmt: skip
    "official/boil_resnet12_5shot": {
        **OH_2021,
        "model.name": "resnet12",
        "algo.inner_lr": 0.3,
        "algo.lr": 0.0006,
        "data.k_shot": 5,
    },  # fmt: skip
}
# The README's ResNet-12 MAML and ANIL numbers name no source: assumed to be the authors' ResNet-12 sparse-MAML lines
# without the mask.
ASSUMED = {
    "official/maml_resnet12_5shot": (27, "fomaml"),
    "official/maml_resnet12_1shot": (35, "fomaml"),
    "official/anil_resnet12_5shot": (27, "anil"),
    "official/anil_resnet12_1shot": (35, "anil"),
}


def parse(flags: str) -> dict[str, str]:
    """``--a=1 --b 2 --c`` -> {"a": "1", "b": "2", "c": ""}."""
    return {k: v for k, v in re.findall(r"--(\w+)(?:[= ]([^-\s]\S*))?", flags)}


def script_settings(line: int, changes: str = "", drop: tuple[str, ...] = ()) -> dict[str, object]:
    """The settings of run_sparse_MAML.sh's ``line`` (with ``changes``, without ``drop``) as this project's keys."""
    f = {**parse(PARSER_DEFAULTS), **parse(SCRIPT[line]), **parse(changes)}
    for key in drop:
        f.pop(key)
    resnet = "resnet" in f
    out: dict[str, object] = {
        "trainer.max_epochs": int(f["epochs"]),
        "data.train_batches_per_epoch": int(f["batches_train"]),
        "data.num_val_tasks": int(f["batches_val"]),  # --test_batch_size 1: one task per batch
        "data.num_test_tasks": int(f["batches_test"]),
        "data.meta_batch_size": int(f["batch_size"]),
        "data.n_way": int(f["num_ways"]),
        "data.k_shot": int(f["num_shots_train"]),
        "data.k_query": int(f["num_shots_test"]),
        "algo.inner_lr": float(f["step_size"]),
        "algo.inner_steps": int(f["gradient_steps"]),
        "algo.inner_steps_test": int(f["gradient_steps_test"]),
        "algo.first_order": "second_order" not in f,
        "algo.adapt_bn": "no_bn_in_inner_loop" not in f,
        "algo.grad_clamp": CLAMP if "clamp_outer_gradients" in f else None,
        "algo.lr": float(f["lr"]),
        "algo.outer_optimizer": f["optimizer_theta"].lower(),
        "trainer.check_val_every_n_epoch": int(f["val_after"]),
        "callbacks.validation_start.epoch": int(f["val_start"]),
        "model.name": "resnet12" if resnet else "conv4",
    }
    if resnet:
        out["model.wide"] = "big_resnet" in f
    else:
        out["model.hidden"] = int(f["hidden_size"])
    if "gradient_mask" in f:
        out["algo.name"] = "sparse_relu_maml" if "meta_relu_through" in f else "sparse_maml"
        out["algo.mask_lr"] = float(f["mask_lr"])
        out["algo.mask_optimizer"] = f["optimizer_mask"].lower()
        if "meta_constant_init" in f:
            out["algo.m_init"] = "constant"
        else:
            assert float(f["init_shift"]) == 0.0  # centred draws, no shift: half of the network starts frozen
            out.update({"algo.mask_init": "shift", "algo.mask_init_sparsity": 0.5})
            out["algo.mask_kaiming"] = "kaiming_init" in f
    return out


def resolved(cfg, key: str):
    if key == "meta_iterations":
        return cfg.trainer.max_epochs * cfg.data.train_batches_per_epoch
    value = OmegaConf.select(cfg, key)
    if key in ("algo.outer_optimizer", "algo.mask_optimizer"):  # a conf/optimizer spec, by the name the script uses
        spec = OmegaConf.to_container(value)
        return next((name for name, named in NAMED.items() if named == spec), spec)
    if key == "algo.inner_steps_test" and value is None:  # null: as in training
        return cfg.algo.inner_steps
    return value


def expected(preset: str) -> dict[str, object]:
    if preset in FROM_SCRIPT:
        return script_settings(*FROM_SCRIPT[preset])
    if preset in ASSUMED:
        line, algo = ASSUMED[preset]
        return {**script_settings(line, drop=("gradient_mask",)), "algo.name": algo}
    return FROM_SOURCES[preset]


PRESETS = [p for p in presets(CONF) if p.startswith("official/")]


def test_every_official_preset_has_its_source_here():
    assert PRESETS and set(PRESETS) == {*FROM_SCRIPT, *FROM_SOURCES, *ASSUMED}


@pytest.mark.parametrize("preset", PRESETS)
def test_official_preset_equals_its_source(preset):
    cfg = compose_config([f"experiment={preset}", "data.root=/data/miniimagenet"])
    assert cfg.data.dataset == "miniimagenet" and cfg.trainer.accelerator == "gpu"
    want = expected(preset)
    got = {key: resolved(cfg, key) for key in want}
    assert got == want
    text = (CONF / "experiment" / f"{preset}.yaml").read_text()
    if preset in FROM_SCRIPT or preset in ASSUMED:  # the comment names the line it reproduces
        line = FROM_SCRIPT[preset][0] if preset in FROM_SCRIPT else ASSUMED[preset][0]
        assert f"line {line}" in text, preset
    OmegaConf.resolve(cfg)
    module = build_module(cfg, (3, 84, 84), [0.5] * 3, [0.25] * 3)
    assert module.algo.name == want["algo.name"]
    if want.get("algo.adapt_bn") is False:
        assert not any("norm" in n for n in module.algo.adapted)


def test_the_script_transcription_reads_flags_as_the_parser():
    assert parse("--a=1 --b 2 --c --d=0.25") == {"a": "1", "b": "2", "c": "", "d": "0.25"}
    settings = script_settings(8)
    assert settings["algo.inner_lr"] == 0.25 and settings["callbacks.validation_start.epoch"] == 100
    assert script_settings(24)["algo.m_init"] == "constant" and script_settings(27)["algo.mask_kaiming"] is False


@pytest.mark.parametrize(
    "preset, size",
    [
        ("official/sparse_maml_conv4_5shot", 84),
        pytest.param("official/sparse_relu_maml_resnet12_1shot", 32, marks=pytest.mark.slow),
    ],
)
def test_official_preset_trains_on_miniimagenet_files(tmp_path, preset, size):
    """``python train.py experiment=<preset> data.root=PATH`` on miniImageNet's pickle layout, with a tiny budget:
    no validation before callbacks.validation_start.epoch, then the best validated checkpoint is tested."""
    for split in ("train", "val", "test"):
        write_mini_pickle(tmp_path / "mini", split, n_classes=5, per_class=7)
    overrides = [
        f"experiment={preset}",
        f"data.root={tmp_path / 'mini'}",
        "trainer.accelerator=cpu",
        "logger=csv",
        "trainer.max_epochs=2",
        "trainer.check_val_every_n_epoch=1",
        "callbacks.validation_start.epoch=1",
        "trainer.enable_progress_bar=false",
        "data.train_batches_per_epoch=2",
        "data.k_query=2",
        "data.num_val_tasks=2",
        "data.num_test_tasks=3",
        "algo.inner_steps=2",
        f"+data.image_size={size}",
    ]
    results = train(compose_config(overrides, output_dir=tmp_path / "run"))
    assert results["num_tasks"] == 3 and results["algorithm"] == expected(preset)["algo.name"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [v["epoch"] for v in history["val"]] == [1]
    assert results["checkpoint"].endswith("epoch001.ckpt")
