"""Built-in dataset formats; importing this package registers them."""

from . import cars, cifar, cub, embedded, folder, miniimagenet, omniglot, tiered_imagenet

__all__ = ["cars", "cifar", "cub", "embedded", "folder", "miniimagenet", "omniglot", "tiered_imagenet"]
