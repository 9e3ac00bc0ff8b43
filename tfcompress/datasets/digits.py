"""scikit-learn's handwritten digits as images, split for training."""


def load_digits(test_fraction=0.25, seed=0):
    """Loads the 1,797 8x8 digit images that ship inside scikit-learn.

    Real data that needs no download, so examples and tests run anywhere.
    Pixels are scaled to [0, 1]; the split is stratified by class.

    Args:
        test_fraction: Fraction of images held out for testing, in (0, 1).
            Defaults to `0.25`.
        seed: Seed of the split. Defaults to `0`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with images of shape
        `(n, 8, 8, 1)` float32 and integer labels 0-9.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    if not 0 < test_fraction < 1:
        raise ValueError(
            "`test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction!r}"
        )
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    data = sklearn_load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    y = data.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)
