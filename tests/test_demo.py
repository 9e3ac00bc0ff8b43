import json
import os

import numpy as np

from tfcompress.demo import DemoRow
from tfcompress.demo import format_table
from tfcompress.demo import run_demo
from tfcompress.demo.results import save_results


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
    # The same table beside the files, for scripts and for people.
    assert (tmp_path / "results.md").read_text().count("\n| ") == len(rows)
    assert (tmp_path / "results.png").is_file()


def test_results_are_saved_as_markdown_json_and_png(tmp_path):
    rows = [
        DemoRow("float32", 100, 1_000, 4_000, 3_000, 0.9, 0.9, 1.0, 0.02),
        DemoRow("int8 (PTQ)", 100, 1_000, 1_500, 900, 0.9, 0.89, 0.98, 0.01),
    ]
    written = save_results(rows, tmp_path, "notes line")
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["results.json", "results.md", "results.png"]
    markdown = (tmp_path / "results.md").read_text().splitlines()
    assert markdown[0].startswith("| model | params | MACs |")
    assert markdown[2] == (
        "| float32 | 100 | 1,000 | 4,000 | 3,000 | 90.00% | 90.00% | "
        "100.00% | 0.020 ms |"
    )
    assert markdown[-1] == "notes line"
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rows"][1]["name"] == "int8 (PTQ)"
    assert data["rows"][1]["tflite_bytes"] == 1_500
    png = (tmp_path / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
