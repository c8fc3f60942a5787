"""MetaLearner's outer loop options: the optimisers (Adam or the official code's Nesterov SGD) and the clamp of
theta's meta-gradient, through one real training step; and checkpoints written by earlier versions."""

import pytest
import pytorch_lightning as pl
import torch

from sparse_maml.module import MetaLearner


def learner(**kwargs):
    torch.manual_seed(0)  # the same weights and masks for every option
    kwargs = {"backbone_kwargs": {"hidden": 4}, "n_way": 3, "in_channels": 1, "image_size": 16, **kwargs}
    return MetaLearner(algorithm="sparse_maml", inner_steps=2, **kwargs)


def one_training_step(module):
    """One meta-iteration in a Trainer, leaving the gradients of that step in .grad."""
    torch.manual_seed(1)
    batch = (
        torch.randn(2, 6, 1, 16, 16),
        torch.arange(3).repeat_interleave(2).repeat(2, 1),
        torch.randn(2, 9, 1, 16, 16),
        torch.arange(3).repeat_interleave(3).repeat(2, 1),
    )
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer = pl.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(module, train_dataloaders=loader)
    return {n: p.grad.abs().max().item() for n, p in module.algo.backbone.named_parameters()}


def test_grad_clamp_bounds_every_entry_of_thetas_meta_gradient():
    free = one_training_step(learner())
    bound = 0.5 * max(free.values())  # the same step's largest entries exceed it without the clamp
    clamped_module = learner(grad_clamp=bound)
    clamped = one_training_step(clamped_module)
    assert max(clamped.values()) <= bound
    assert max(clamped.values()) == pytest.approx(bound)  # the largest entries sit at the bound
    masks = [m.grad.abs().max().item() for m in clamped_module.algo.meta_parameters().values()]
    assert max(masks) > 0  # m's gradient is not clamped (nor zeroed)


def test_optimisers_adam_or_nesterov_sgd():
    theta, mask = learner(outer_optimizer="sgd", lr=0.01, mask_lr=0.02).configure_optimizers()
    assert isinstance(theta, torch.optim.SGD) and theta.defaults["nesterov"] and theta.defaults["momentum"] == 0.9
    assert isinstance(mask, torch.optim.Adam) and mask.defaults["lr"] == 0.02
    _, mask = learner(mask_optimizer="sgd").configure_optimizers()
    assert isinstance(mask, torch.optim.SGD)
    with pytest.raises(ValueError, match="algo.outer_optimizer='rmsprop'"):
        learner(outer_optimizer="rmsprop")


def test_optimisers_from_config_specs():
    """conf/optimizer's specs: any torch.optim class with its options; lr stays algo.lr and algo.mask_lr."""
    spec = {"_target_": "torch.optim.RMSprop", "_partial_": True, "alpha": 0.9}
    theta, mask = learner(outer_optimizer=spec, lr=0.01, mask_lr=0.02).configure_optimizers()
    assert isinstance(theta, torch.optim.RMSprop) and theta.defaults["alpha"] == 0.9 and theta.defaults["lr"] == 0.01
    assert isinstance(mask, torch.optim.Adam)
    with pytest.raises(ValueError, match="_partial_: true"):
        learner(outer_optimizer={"_target_": "torch.optim.SGD"})
    with pytest.raises(ValueError, match="algo.mask_lr"):
        learner(mask_optimizer={**spec, "lr": 0.1})
    with pytest.raises(ValueError, match="not a torch.optim.Optimizer"):
        learner(outer_optimizer={"_target_": "collections.OrderedDict", "_partial_": True}).configure_optimizers()


def test_a_checkpoint_names_its_optimiser_without_running_it(tmp_path, monkeypatch):
    """from_checkpoint keeps the spec as data: nothing it names is imported or built until training starts."""
    spec = {"_target_": "no_such_module.Optimizer", "_partial_": True}
    module = learner(outer_optimizer=spec)
    path = tmp_path / "m.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    loaded = MetaLearner.from_checkpoint(path)
    assert loaded.hparams.outer_optimizer == spec
    with pytest.raises(Exception, match="no_such_module"):
        loaded.configure_optimizers()


def test_from_checkpoint_drops_options_the_algorithm_does_not_take(tmp_path):
    module = MetaLearner(algorithm="fomaml", backbone_kwargs={"hidden": 4}, in_channels=1, image_size=16, n_way=3)
    hparams = dict(module.hparams) | {"mask_init_sparsity": 0.5, "mask_init": "quantile"}  # as every algorithm stored
    path = tmp_path / "old.ckpt"
    torch.save(
        {"state_dict": module.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": pl.__version__},
        path,
    )
    with pytest.raises(ValueError, match="algorithm 'fomaml' has no option mask_init, mask_init_sparsity"):
        MetaLearner.load_from_checkpoint(path)
    loaded = MetaLearner.from_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), module.state_dict().values()))
    # a masked algorithm keeps its own options
    masked = MetaLearner(algorithm="sparse_maml", backbone_kwargs={"hidden": 4}, in_channels=1, image_size=16,
                         n_way=3, mask_init_sparsity=0.25)  # fmt: skip
    trainer_like = {"state_dict": masked.state_dict(), "hyper_parameters": dict(masked.hparams)}
    torch.save(trainer_like | {"pytorch-lightning_version": pl.__version__}, path)
    assert MetaLearner.from_checkpoint(path).algo.mask_init_sparsity == 0.25
