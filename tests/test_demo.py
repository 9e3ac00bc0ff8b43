import numpy as np

from tfcompress.demo import format_table
from tfcompress.demo import run_demo


def test_demo_trains_exports_and_reports(tmp_path):
    lines = []
    rows = run_demo(
        epochs=8, output_dir=tmp_path, benchmark_runs=5, log=lines.append
    )
    (
        float_row,
        int8_row,
        mse_row,
        qat_row,
        pruned_row,
        cnn_row,
        decomposed_row,
        student_row,
        distilled_row,
    ) = rows
    assert [r.name for r in rows][:4] == [
        "float32",
        "int8 (PTQ)",
        "int8 (PTQ, MSE calibration)",
        "int8 (QAT)",
    ]
    # The kernels of 500+ weights are pruned to 80%; the small ones stay.
    assert pruned_row.name in ("int8, 75% sparse", "int8, 76% sparse")
    assert (tmp_path / "model.keras").is_file()
    assert (tmp_path / "model_float32.tflite").stat().st_size == (
        float_row.tflite_bytes
    )
    assert (tmp_path / "model_int8.tflite").stat().st_size == (
        int8_row.tflite_bytes
    )
    # int8 weights take a quarter of the bytes, but on a model this small the
    # per-channel scales and zero points of every tensor weigh about as
    # much as the weights themselves.
    assert int8_row.tflite_bytes < 0.7 * float_row.tflite_bytes
    assert float_row.params == int8_row.params > 10_000
    assert float_row.macs > float_row.params
    # A real model on real data: it learned, and LiteRT agrees with Keras.
    assert float_row.keras_accuracy > 0.8
    assert float_row.top1_agreement > 0.99
    assert abs(float_row.litert_accuracy - float_row.keras_accuracy) < 0.01
    assert int8_row.top1_agreement > 0.9
    assert mse_row.top1_agreement > 0.9
    # QAT: the file computes what the Keras model computes, and it lost
    # (almost) nothing to int8.
    assert qat_row.top1_agreement >= 0.99
    assert qat_row.litert_accuracy >= float_row.litert_accuracy - 0.02
    assert qat_row.tflite_bytes < 0.7 * float_row.tflite_bytes
    assert all(np.isfinite(r.latency_ms) and r.latency_ms > 0 for r in rows)
    # The pruned file is as large, but its zeros compress: gzipped it is
    # well under the dense int8 file, and it still classifies.
    assert pruned_row.tflite_bytes <= int8_row.tflite_bytes
    assert pruned_row.gzipped_bytes < 0.75 * int8_row.gzipped_bytes
    assert pruned_row.keras_accuracy > 0.8
    assert pruned_row.top1_agreement > 0.9
    assert any("sparsity 80.0%" in line for line in lines)
    # The factorized plain CNN: a fraction of the MACs and parameters, and
    # after a short fine-tune it classifies about as well as the original.
    assert cnn_row.name == "plain CNN float32"
    assert decomposed_row.name == "plain CNN, CP + SVD, int8"
    assert decomposed_row.macs < 0.35 * cnn_row.macs
    assert decomposed_row.params < 0.5 * cnn_row.params
    assert cnn_row.keras_accuracy > 0.9
    assert decomposed_row.keras_accuracy > cnn_row.keras_accuracy - 0.03
    assert decomposed_row.top1_agreement > 0.95
    # The student: 24x fewer MACs than the model that teaches it; trained
    # alone and distilled from the same initial weights, both classify, and
    # their calibrated int8 files agree with Keras as the other PTQ rows do.
    assert student_row.name == "student alone, int8"
    assert distilled_row.name == "student, distilled, int8"
    assert distilled_row.macs == student_row.macs
    assert distilled_row.params == student_row.params
    assert 20 * distilled_row.macs < float_row.macs
    assert any("24x fewer MACs" in line for line in lines)
    assert any("cached teacher outputs" in line for line in lines)
    for row in (student_row, distilled_row):
        assert row.keras_accuracy > 0.85
        assert row.top1_agreement > 0.95
        assert abs(row.litert_accuracy - row.keras_accuracy) < 0.03
    table = lines[-2]
    assert table == format_table(rows)
    assert "int8 (PTQ)" in table and "median latency" in table
