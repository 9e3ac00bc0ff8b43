"""Fashion-MNIST from the official IDX files on disk (never downloaded)."""

import gzip
import os
import pathlib

import numpy as np

# Where the files are when `data_dir` is not given. There is no default
# folder: an installed package knows nothing of where a checkout keeps data.
ENV_VARIABLE = "TFCOMPRESS_FASHION_MNIST"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read_idx(path, magic, header_bytes):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path} is not an IDX file of the expected kind: magic number "
            f"{found}, expected {magic}. Point `data_dir` at the official "
            "Fashion-MNIST files."
        )
    return np.frombuffer(data, np.uint8, offset=header_bytes)


def _resolve(data_dir):
    if data_dir is None:
        data_dir = os.environ.get(ENV_VARIABLE)
        if not data_dir:
            raise ValueError(
                "`data_dir` is required: pass the folder holding the four "
                f"official Fashion-MNIST files ({', '.join(FILES.values())}), "
                f"or set the {ENV_VARIABLE} environment variable to it. "
                "tfcompress never downloads data. Received: data_dir=None "
                f"and {ENV_VARIABLE} unset"
            )
        source = f"{ENV_VARIABLE}={data_dir!r}"
    else:
        source = f"data_dir={str(data_dir)!r}"
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder {data_dir} does not exist (or is not a "
            "folder). tfcompress never downloads data: pass `data_dir` (or "
            f"set {ENV_VARIABLE}) to a folder holding the four official "
            f"files: {', '.join(FILES.values())}. Received: {source}"
        )
    paths = {}
    for key, name in FILES.items():
        candidates = [data_dir / name, data_dir / name.removesuffix(".gz")]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {name} not found in {data_dir}. "
                "tfcompress never downloads data: pass `data_dir` (or set "
                f"{ENV_VARIABLE}) to a folder holding the four official "
                f"files: {', '.join(FILES.values())}. Received: {source}"
            )
        paths[key] = found
    return paths


def load_fashion_mnist(data_dir=None, train_limit=None, test_limit=None):
    """Loads Fashion-MNIST from the official (optionally gzipped) IDX files.

    Args:
        data_dir: Folder holding `train-images-idx3-ubyte.gz` and the three
            other official files (gzipped or not). Defaults to `None`: the
            folder named by the `TFCOMPRESS_FASHION_MNIST` environment
            variable, which must then be set.
        train_limit: Optional number of training images to keep (the first
            ones, which are class-balanced to within a few percent), for
            quick runs.
        test_limit: Optional number of test images to keep.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with images of shape
        `(n, 28, 28, 1)` float32 in [0, 1] and int64 labels 0-9
        (`CLASS_NAMES` names them).

    Raises:
        ValueError: If `data_dir` is `None` and `TFCOMPRESS_FASHION_MNIST`
            is not set, or a file is not an IDX file of the expected kind.
        FileNotFoundError: If the folder or a file is missing; the message
            says where it looked and which files it needs.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(
        "path/to/fashion-mnist", train_limit=5000
    )
    ```
    """
    paths = _resolve(data_dir)

    def images(key, limit):
        x = _read_idx(paths[key], 2051, 16).reshape(-1, 28, 28, 1)
        return x[:limit].astype("float32") / 255.0

    def labels(key, limit):
        return _read_idx(paths[key], 2049, 8)[:limit].astype("int64")

    x_train = images("train_images", train_limit)
    y_train = labels("train_labels", train_limit)
    x_test = images("test_images", test_limit)
    y_test = labels("test_labels", test_limit)
    return (x_train, y_train), (x_test, y_test)
