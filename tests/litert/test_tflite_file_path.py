import pathlib

import numpy as np
import pytest

from tfcompress.export import TFLiteExport
from tfcompress.litert import TensorTracer
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_file_path


def test_path_or_export(conv_float):
    assert isinstance(conv_float, TFLiteExport)
    path = conv_float.path
    assert tflite_file_path(conv_float) == path
    assert tflite_file_path(path) == path
    assert tflite_file_path(pathlib.Path(path)) == path
    assert tflite_file_path(path.encode()) == path


def test_tracer_takes_an_export(conv_float, brightness_data):
    x = brightness_data[2][:4]
    tracer = TensorTracer(conv_float)
    tracer.run([x])
    output = inspect_tflite(conv_float).outputs[0]
    from_path = TensorTracer(conv_float.path)
    from_path.run([x])
    np.testing.assert_array_equal(
        tracer.tensor(output.index), from_path.tensor(output.index)
    )
    assert tracer.tensor(output.index).shape == (4, 10)


def test_errors(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"path of a `.tflite` file \(a str or os.PathLike\) or the "
        r"`TFLiteExport`.*Received: model_path of type int",
    ):
        tflite_file_path(3, "model_path")
    with pytest.raises(
        FileNotFoundError,
        match=r"No `.tflite` file at `reference`. Received: reference='.*x",
    ):
        tflite_file_path(tmp_path / "x.tflite", "reference")
