"""The one error type of the data pipeline."""


class DatasetError(ValueError):
    """A dataset cannot be loaded or sampled as asked; the message names the path or value and the fix."""
