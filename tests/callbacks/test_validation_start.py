"""ValidationStart: no validation before the given epoch, then every check_val_every_n_epoch, and the best checkpoint
chosen among the validated epochs only."""

import pytest
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.demos.boring_classes import BoringModel

from sparse_maml.callbacks import ValidationStart


class Validated(pl.Callback):
    def __init__(self):
        self.epochs = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.epochs.append(trainer.current_epoch)


class LoggedModel(BoringModel):
    def validation_step(self, batch, batch_idx):
        loss = super().validation_step(batch, batch_idx)["x"]
        self.log("val/acc", -loss)


@pytest.mark.parametrize("start, every, want", [(0, 1, [0, 1, 2, 3, 4, 5]), (3, 1, [3, 4, 5]), (2, 2, [3, 5])])
def test_validation_starts_at_the_epoch(tmp_path, start, every, want):
    seen = Validated()
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", filename="{epoch}")
    trainer = pl.Trainer(
        max_epochs=6,
        limit_train_batches=2,
        limit_val_batches=1,
        check_val_every_n_epoch=every,
        num_sanity_val_steps=0,
        callbacks=[ValidationStart(start), seen, best],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(LoggedModel())
    assert seen.epochs == want
    saved = {int(p.stem.removeprefix("epoch=")) for p in tmp_path.glob("epoch=*.ckpt")}
    assert saved and saved <= set(want)


def test_negative_start_is_an_error():
    with pytest.raises(ValueError, match="validation_start.epoch=-1"):
        ValidationStart(-1)
