import pytest
import pytorch_lightning as pl
import torch

from sparse_maml.data import EpisodicDataModule
from sparse_maml.data import augment as aug

from .helpers import write_omniglot

SMALL = {
    "dataset": "embedded",
    "classes": [8, 6, 6],
    "images_per_class": 6,
    "k_query": 3,
    "num_val_tasks": 5,
    "num_test_tasks": 4,
    "train_batches_per_epoch": 3,
    "meta_batch_size": 2,
}


def test_batches_without_trainer():
    dm = EpisodicDataModule(**SMALL, eval_batch_size=2)
    dm.setup("fit")
    assert dm.image_shape == (1, 28, 28) and dm.num_classes == 8 and dm.n_way == 5
    loader = dm.train_dataloader()
    assert len(loader) == 3
    batches = list(loader)
    xs, ys, xq, yq = batches[0]
    assert xs.shape == (2, 5, 1, 28, 28) and xq.shape == (2, 15, 1, 28, 28) and xs.dtype == torch.uint8
    assert ys.shape == (2, 5) and yq.shape == (2, 15) and ys.dtype == torch.int64
    assert dm.state_dict()["train_position"] == 6
    assert not torch.equal(next(iter(dm.train_dataloader()))[0], xs)  # the next epoch continues the stream
    val = list(dm.val_dataloader())
    assert [b[0].shape[0] for b in val] == [2, 2, 1]  # 5 fixed tasks in batches of 2
    nxs, nys, nxq, nyq = dm.on_after_batch_transfer(val[0], 0)
    assert nxs.dtype == torch.float32 and torch.equal(nxs, dm.normalize(val[0][0])) and torch.equal(nys, val[0][1])
    test = list(EpisodicDataModule(**SMALL).test_dataloader())
    assert len(test) == 4 and test[0][0].shape[0] == 1


def test_fixed_episodes_shared_across_instances_and_seeds():
    a, b, c = (EpisodicDataModule(**SMALL, seed=s) for s in (0, 0, 1))
    for x, y in zip(a.val_dataloader(), b.val_dataloader(), strict=True):
        assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a.val_dataloader(), c.val_dataloader(), strict=True))


def test_eval_seed_fixes_evaluation_episodes_across_training_seeds():
    a, b = (EpisodicDataModule(**SMALL, seed=s, eval_seed=7) for s in (0, 1))
    for stage in ("val", "test"):
        for x, y in zip(a.episodes(stage), b.episodes(stage), strict=True):
            assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    train = [next(iter(m.train_dataloader()))[0] for m in (a, b)]
    assert not torch.equal(*train)  # training episodes still follow the seed
    other = EpisodicDataModule(**SMALL, seed=0, eval_seed=8).episodes("test")
    assert not all(torch.equal(x.support, y.support) for x, y in zip(a.episodes("test"), other, strict=True))


def test_state_dict_round_trip():
    dm = EpisodicDataModule(**SMALL)
    list(dm.train_dataloader())
    state = dm.state_dict()
    expected = list(dm.train_dataloader())
    fresh = EpisodicDataModule(**SMALL)
    fresh.load_state_dict(state)
    got = list(fresh.train_dataloader())
    assert all(torch.equal(u, v) for x, y in zip(expected, got, strict=True) for u, v in zip(x, y, strict=True))
    assert fresh.mean == dm.mean and fresh.std == dm.std
    with_workers = EpisodicDataModule(**SMALL, num_workers=2)
    with_workers.load_state_dict(state)
    got = list(with_workers.train_dataloader())
    assert all(torch.equal(u, v) for x, y in zip(expected, got, strict=True) for u, v in zip(x, y, strict=True))
    assert with_workers.state_dict()["train_position"] == state["train_position"] + 6


def test_normalize_constants():
    dm = EpisodicDataModule(**SMALL, mean=0.5, std=0.25)
    x = torch.full((2, 1, 3, 3), 255, dtype=torch.uint8)
    assert torch.allclose(dm.normalize(x), torch.full((2, 1, 3, 3), 2.0))
    computed = EpisodicDataModule(**SMALL)
    z = computed.normalize(computed.store("train").images)
    assert abs(z.mean().item()) < 1e-3 and abs(z.std().item() - 1) < 1e-2


def test_overlapping_splits_warn(tmp_path):
    write_omniglot(tmp_path, "background", {"Alpha": 5, "Beta": 5}, drawers=4)
    dm = EpisodicDataModule(
        "omniglot",
        str(tmp_path),
        k_query=3,
        splits={"train": "background", "val": "background[Alpha]", "test": "background[Beta]"},
        cache_dir=str(tmp_path / "c"),
    )
    with pytest.warns(UserWarning, match="5 classes of the val split 'val' are also in the train split"):
        dm.setup("fit")
    assert dm.hparams["splits"]["val"] == "background[Alpha]"


class _Recorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.train_sums, self.dtypes = [], set()

    def training_step(self, batch, batch_idx):
        xs, ys, xq, yq = batch
        self.dtypes.add(xs.dtype)
        self.train_sums.append(round(xs.double().sum().item(), 3))
        return (self.w * xq.mean()).sum() + self.w.pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.dtypes.add(batch[0].dtype)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(dm, epochs, tmp_path, ckpt=None):
    model = _Recorder()
    trainer = pl.Trainer(
        max_epochs=epochs,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return model, trainer


def test_trainer_checkpoint_resume_continues_stream(tmp_path, monkeypatch):
    calls = []
    original = aug.augment
    monkeypatch.setattr(aug, "augment", lambda x, *a: calls.append(x.shape) or original(x, *a))
    full, _ = _fit(EpisodicDataModule(**SMALL, augment=True, crop_padding=2), 3, tmp_path / "full")
    assert full.dtypes == {torch.float32}
    # support and query of each task (seeded by its episode index) of training batches only, never validation
    assert len(calls) == 2 * 2 * 9 and all(shape[0] == 1 for shape in calls)
    first, trainer = _fit(EpisodicDataModule(**SMALL, augment=True, crop_padding=2), 2, tmp_path / "a")
    ckpt = tmp_path / "a.ckpt"
    trainer.save_checkpoint(ckpt)
    assert torch.load(ckpt, weights_only=True)["EpisodicDataModule"]["train_position"] == 2 * 3 * 2
    resumed, _ = _fit(EpisodicDataModule(**SMALL, augment=True, crop_padding=2), 3, tmp_path / "b", str(ckpt))
    assert first.train_sums == full.train_sums[:6] and resumed.train_sums == full.train_sums[6:]


def test_split_digests_and_input_shape(tmp_path):
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 5, "Beta": 6}, drawers=4)
    options = {"splits": {"train": "background[Alpha]", "val": "background[Beta]", "test": "background"}}
    dm = EpisodicDataModule("omniglot", str(root), cache_dir=str(tmp_path / "c"), k_query=3, **options)
    assert dm.split_digests == {}  # only the splits it has read
    dm.prepare_data()  # nothing to download: nothing read
    assert dm.split_digests == {} and not (tmp_path / "c").exists()
    dm.setup()
    digests = dm.split_digests
    assert set(digests) == {"train", "val", "test"} and len(set(digests.values())) == 3
    assert digests["test"] == dm.store("test").digest
    assert dm.state_dict()["split_digests"] == digests  # saved in checkpoints
    again = EpisodicDataModule("omniglot", str(root), cache_dir=str(tmp_path / "c"), **options)
    assert again.store("test").from_cache and again.split_digests == {"test": digests["test"]}
    rgb = EpisodicDataModule("omniglot", str(root), image_size=12, channels=3, **options)
    assert rgb.store("test").image_shape == (3, 12, 12) and rgb.split_digests["test"] != digests["test"]
    changed = {**dm.state_dict(), "split_digests": {**digests, "train": "0" * 64}}
    with pytest.warns(UserWarning, match=r"the train split\(s\) of 'omniglot' differ from those the checkpoint"):
        dm.load_state_dict(changed)


def test_train_rotations_add_training_classes_and_keep_the_evaluation_episodes():
    plain, rotated = (EpisodicDataModule(**SMALL, train_rotations=r) for r in (False, True))
    assert rotated.store("train").num_classes == 4 * plain.store("train").num_classes == 32
    for stage in ("val", "test"):  # the same classes, so the same fixed episodes: runs with and without pair up
        assert rotated.store(stage).num_classes == plain.store(stage).num_classes
        for x, y in zip(plain.episodes(stage), rotated.episodes(stage), strict=True):
            assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    xs = next(iter(rotated.train_dataloader()))[0]
    assert xs.shape == (2, 5, 1, 28, 28)
