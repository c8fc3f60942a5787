"""DDP: on CPU (gloo) two processes train exactly what one process trains with the same meta-batch; the ranks
Lightning starts run their parent's job and do not prepare the data again."""

import json

import pytest
import torch

from sparse_maml.run import train

from .app_helpers import TINY, compose_config, run_script

OVERRIDES = [
    *TINY,
    "logger=csv",
    "data.meta_batch_size=4",  # 2 tasks per rank
    "data.num_val_tasks=5",  # 3 + 2 episodes: uneven shares, no padding
    "data.eval_batch_size=2",
]


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def test_ddp_two_processes_match_one_process(tmp_path):
    one = train(compose_config(OVERRIDES, output_dir=tmp_path / "one"))
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    done = run_script("train.py", *OVERRIDES, *ddp, f"hydra.run.dir={tmp_path / 'ddp'}")
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 3
    assert a["EpisodicDataModule"]["train_position"] == b["EpisodicDataModule"]["train_position"] == 12

    # Adam's moments are fixed linear (first) and quadratic (second) functions of the meta-gradients of the three
    # steps: equal moments mean the ranks' meta-gradients were averaged (a sum would double them), for theta and m.
    # A conv bias followed by BatchNorm has no effect on the loss: its meta-gradient (and its mask's) is rounding
    # noise (~1e-9), which Adam scales up to steps of +-lr in either process alike; those tensors are left out.
    worst = {"exp_avg": 0.0, "exp_avg_sq": 0.0, "weights": 0.0}
    noise = set()
    for i, (opt_a, opt_b) in enumerate(zip(a["optimizer_states"], b["optimizer_states"], strict=True)):
        for p in opt_a["state"]:
            if opt_a["state"][p]["exp_avg_sq"].sqrt().max() < 1e-6:
                noise.add((i, p))
                continue
            for moment in ("exp_avg", "exp_avg_sq"):
                worst[moment] = max(worst[moment], relative_error(opt_b["state"][p][moment], opt_a["state"][p][moment]))
    assert worst["exp_avg"] < 1e-5 and worst["exp_avg_sq"] < 1e-5, worst

    # Weights and masks: each optimiser holds its parameters in state_dict order (theta, then the mask m).
    names = [k for k in a["state_dict"] if not k.startswith(("train_", "mean", "std"))]
    groups = [
        [k for k in names if k.startswith("algo.backbone.")],
        [k for k in names if k.startswith("algo.modulation.")],
    ]
    assert [len(g) for g in groups] == [len(o["state"]) for o in a["optimizer_states"]]
    skipped = {groups[i][p] for i, p in noise}
    assert skipped and all(k.replace("__", ".").endswith("conv.bias") for k in skipped), skipped
    for key in names:
        if key not in skipped:
            worst["weights"] = max(worst["weights"], (a["state_dict"][key] - b["state_dict"][key]).abs().max().item())
    assert worst["weights"] < 1e-5, worst
    print(f"DDP vs one process: {worst}")

    for metric in ("train_loss", "train_acc"):  # the epoch's running means, summed over ranks into the checkpoint
        means = [c["state_dict"][f"{metric}.mean_value"] / c["state_dict"][f"{metric}.weight"] for c in (a, b)]
        assert means[1].item() == pytest.approx(means[0].item(), rel=1e-6)
        assert b["state_dict"][f"{metric}.weight"].item() == 2 * a["state_dict"][f"{metric}.weight"].item()

    history_one = json.loads((tmp_path / "one" / "history.json").read_text())
    history_ddp = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert [v["acc"] for v in history_ddp["val"]] == pytest.approx([v["acc"] for v in history_one["val"]], abs=1e-6)
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["num_tasks"] == one["num_tasks"] == 6  # test episodes of both ranks gathered
    assert results["accuracy"] == pytest.approx(one["accuracy"], abs=1e-6)
    # each test episode's accuracy where it belongs: the ranks' shares gathered in episode order
    episodes = [json.loads((tmp_path / d / "episodes.json").read_text()) for d in ("one", "ddp")]
    assert episodes[1]["key"] == episodes[0]["key"] and len(episodes[0]["key"]) == 6
    assert episodes[1]["accuracy"] == pytest.approx(episodes[0]["accuracy"], abs=1e-6)
    assert [p.name for p in (tmp_path / "ddp" / "csv").iterdir()] == ["version_0"]  # rank 0 logs alone


def test_a_rank_started_by_lightning_runs_its_parents_job(monkeypatch):
    from sparse_maml import ddp

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv(ddp.JOB_ENV, json.dumps(["algo=fomaml", "hydra.run.dir=/r"]))
    assert ddp.job_argv(["train.py", "-m", "algo=fomaml,maml"]) == ["train.py", "-m", "algo=fomaml,maml"]
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ddp.job_argv(["train.py", "-m", "algo=fomaml,maml"]) == [
        "train.py",
        "algo=fomaml",
        "hydra.run.dir=/r",
        "hydra.job.name=train_ddp_process_1",
    ]


def test_data_is_prepared_once_per_process_tree(monkeypatch):
    """The process that prepared the data marks it; the ranks Lightning starts from it inherit the mark and skip.
    The mark is gone when the job ends, so that the next job of a sweep prepares its own data."""
    from omegaconf import OmegaConf

    from sparse_maml import ddp

    class Data:
        dataset, root, calls = "omniglot", "/data/omniglot", 0

        def prepare_data(self):
            self.calls += 1

    monkeypatch.setenv("SPARSE_MAML_DATA_PREPARED", '["miniimagenet", "/data/mini"]')  # other data: no skip
    data = Data()
    with ddp.distributed_job(OmegaConf.create({})):
        ddp.prepare_data(data)
        ddp.prepare_data(data)  # what a rank started from this process does
        assert data.calls == 1
    ddp.prepare_data(data)
    assert data.calls == 2


def test_an_evaluation_leaves_no_mark_of_prepared_data(monkeypatch):
    """evaluate() runs outside a training job: the data it prepared must not make a later train() in the same
    process skip its own preparation (its download)."""
    from sparse_maml import ddp

    class Data:
        dataset, root, calls = "omniglot", "/data/omniglot", 0

        def prepare_data(self):
            self.calls += 1

    monkeypatch.delenv("SPARSE_MAML_DATA_PREPARED", raising=False)
    data = Data()
    with ddp.evaluation_job():
        ddp.prepare_data(data)
    ddp.prepare_data(data)
    assert data.calls == 2
