"""What every subcommand shares: errors and exit codes, progress lines,
reading the files it is given, writing the files it makes.

Exit codes: `0` success, `1` the job failed (a conversion error, a file
that does not match its model closely enough), `2` bad input (a missing
file, the wrong kind of file, data of the wrong shape, a bad option):
argparse's own code for usage errors.
"""

import argparse
import dataclasses
import gzip
import json
import os
import sys
import time

import numpy as np

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """An error the command reports in one line, with its exit code."""

    def __init__(self, message, exit_code=EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass
class Result:
    """What a subcommand prints on stdout: `text` for people, `data` for
    `--json`, and its exit code."""

    text: str
    data: dict
    exit_code: int = EXIT_OK


class Progress:
    """Prints `[  1.2s] message` lines on stderr, timed from its creation.

    Stderr, so that stdout holds only the result (a table, or `--json`).
    """

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, message):
        elapsed = time.perf_counter() - self.start
        # sys.stderr at call time: the quiet mode swaps it for a copy of
        # the terminal's descriptor (see tfcompress.native_stderr).
        print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


def add_threads_option(parser):
    """`--threads`: the LiteRT interpreter's threads."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="LiteRT interpreter threads (default: %(default)s)",
    )


def add_common_options(parser):
    """`--json` and `--verbose`, on every subcommand."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON on stdout (progress stays on stderr)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's, the converter's and LiteRT's own log lines "
        "(hidden by default)",
    )


def existing_file(path, suffix, what):
    """Checks that `path` is a file ending in `suffix`."""
    if not os.path.isfile(path):
        raise CommandError(f"no such file: {path}")
    if not path.endswith(suffix):
        raise CommandError(f"expected a {suffix} file ({what}), got {path}")
    return path


def load_keras_model(path):
    """Loads a `.keras` file in safe mode, or raises a `CommandError`."""
    existing_file(path, ".keras", "a Keras model")
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises several types for bad files.
        raise CommandError(
            f"could not load {path} as a Keras model (safe_mode=True): "
            f"{error}"
        ) from None


def read_tflite(path):
    """Checks that `path` is a TFLite file; returns its `inspect_tflite`."""
    existing_file(path, ".tflite", "a TFLite model")
    from tfcompress.litert import inspect_tflite

    try:
        return inspect_tflite(path)
    except ValueError as error:
        raise CommandError(f"{path} is not a TFLite file: {error}") from None


def load_array(path, option):
    """Reads examples from a `.npy` file, or the `x` (or only) array of a
    `.npz` file."""
    if not os.path.isfile(path):
        raise CommandError(f"{option}: no such file: {path}")
    if not path.endswith((".npy", ".npz")):
        raise CommandError(
            f"{option}: expected a .npy or .npz file of examples, got {path}"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises several types for bad files.
        raise CommandError(f"{option}: could not read {path}: {error}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if "x" in names:
                array = loaded["x"]
            elif len(names) == 1:
                array = loaded[names[0]]
            else:
                raise CommandError(
                    f"{option}: {path} holds several arrays ({', '.join(names)}) "
                    "and none is named 'x'"
                )
    else:
        array = loaded
    if array.ndim < 1 or len(array) == 0 or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise CommandError(
            f"{option}: expected a numeric array of examples (N, ...), N >= 1; "
            f"{path} holds one of shape {array.shape} and dtype {array.dtype}"
        )
    return array


def check_examples(model, x, option):
    """Checks that examples `x` fit the input of a one-input model.

    The library checks too, deeper and in its own words; this says which
    option and file were wrong, before any work starts.
    """
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        return
    expected = tuple(inputs[0].shape[1:])
    got = tuple(x.shape[1:])
    if len(expected) != len(got) or any(
        e is not None and e != g for e, g in zip(expected, got)
    ):
        shown = "(" + ", ".join("?" if e is None else str(e) for e in expected)
        shown += ",)" if len(expected) == 1 else ")"
        raise CommandError(
            f"{option}: examples of shape {got}, but the model takes inputs "
            f"of shape {shown} (without the batch dimension)"
        )


def output_path(path, suffix, default):
    """The output file: `path` (checked) or `default` when not given."""
    path = default if path is None else path
    if not path.endswith(suffix):
        raise CommandError(f"--output must end with {suffix}, got {path}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"--output: no such directory: {directory}")
    return path


def sibling(path, tag, suffix):
    """`dir/model.keras`, "int8", ".tflite" -> `dir/model_int8.tflite`."""
    stem = os.path.splitext(path)[0]
    return f"{stem}_{tag}{suffix}"


def save_keras_model(model, path):
    """Saves `model` to `path` atomically: no partial file on failure."""
    from tfcompress.export.atomic_write import write_atomically

    write_atomically(path, model.save)


def file_sizes(path):
    """`(bytes, gzipped bytes)` of a file; gzip level 9, as `to_tflite`."""
    with open(path, "rb") as f:
        content = f.read()
    return len(content), len(gzip.compress(content, compresslevel=9))


def split_names(values):
    """`["a,b", "c"]` -> `["a", "b", "c"]`: options that take names accept
    both spellings."""
    names = []
    for value in values or ():
        names.extend(name for name in value.split(",") if name)
    return names


def print_result(result, as_json, stream):
    if as_json:
        print(json.dumps(result.data, indent=2), file=stream)
    elif result.text:
        print(result.text, file=stream)
    stream.flush()


def bounded_number(text, convert, within, bound):
    """Parses `text` with `convert` (`int` or `float`) for argparse.

    Raises an `argparse.ArgumentTypeError` when it is not a number, or when
    `within(value)` is false (`bound` says what is allowed, e.g. `">= 1"`).
    """
    try:
        value = convert(text)
    except ValueError:
        kind = "an integer" if convert is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not within(value):
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text):
    """An argparse type: an integer >= 1."""
    return bounded_number(text, int, lambda value: value >= 1, ">= 1")
