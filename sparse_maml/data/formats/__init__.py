"""Built-in dataset formats; importing this package registers them."""

from . import embedded, folder, miniimagenet, omniglot

__all__ = ["embedded", "folder", "miniimagenet", "omniglot"]
