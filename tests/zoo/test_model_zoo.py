"""Every tool on every zoo model (tiny versions of what users bring).

For each of `tfcompress.models.ZOO_MODELS`, briefly trained: the profile
counts every layer; float32 export matches Keras; int8 post-training and
quantization-aware exports are integer files (every weighted op, read back
from the file) that agree with their Keras model; magnitude pruning,
channel pruning and decomposition run and shrink what they promise; a
`.keras` file round-trips. `benchmarks/model_zoo.py` measures the full
networks.
"""

import warnings

import keras
import numpy as np
import pytest

import tfcompress
from tests.zoo.conftest import LOSS
from tfcompress.models import ZOO_MODELS

# Layers quantize_model leaves float on purpose, by model (none today).
QAT_FLOAT_LAYERS = {}
# Top-1 agreement of the converter's own int8 post-training file with the
# float model: at least 0.9, except the ViT's. Its residual stream gets one
# int8 scale, set by the tokens of the digits' strokes; the blank patches'
# tokens (bias plus position) span a few steps of it, and LayerNorm divides
# their rounding error by their small deviation (85.6% on the tiny ViT;
# 27.9% on raw pixels, before the zoo ViT scaled its inputs). The QAT file
# of the same model agrees at >= 99% (below): transformers need QAT.
PTQ_MIN_AGREEMENT = {"vit": 0.8}
# Models whose QAT twin gets one short epoch of quantization-aware
# training before export, as a user runs it (the other files are compared
# straight after `quantize_model`, which the suite's time asks for). Three
# float epochs leave EfficientNetB0's logits with the top two within one
# int8 step of each other for a third of the inputs; one QAT epoch widens
# the margins (68% -> 100% agreement).
QAT_FIT = {"efficientnet_b0"}
# Models whose decomposable layers hold too few MACs to reach 0.8 of the
# model's: the text classifier's MACs are in its LSTM.
DECOMPOSITION_UNREACHABLE = ("lstm_text",)


# One xdist group per model: under `pytest -n` (as `make test` runs) a
# model is trained once, by the worker that runs all its tests.
MODELS = [
    pytest.param(name, marks=pytest.mark.xdist_group(name)) for name in ZOO_MODELS
]


def export(model, path, **kwargs):
    return tfcompress.to_tflite(model, str(path), verbose=False, **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_profile_counts_every_layer(name, trained_zoo):
    model, *_ = trained_zoo(name)
    report = tfcompress.profile(model)
    assert report.unknown_macs == []
    assert report.macs > 0
    assert report.params == model.count_params()


@pytest.mark.parametrize("name", MODELS)
def test_float32_export_matches_keras(name, trained_zoo, tmp_path):
    model, _, _, x_check = trained_zoo(name)
    exported = export(model, tmp_path / "float32.tflite")
    # Float32 parity is an error bound, not a vote: 128 inputs show it (the
    # int8 files' agreement below is counted on all 512+).
    parity = tfcompress.export.verify(model, exported, x_check[:128])
    assert parity.top1_agreement == 1.0
    assert parity.relative_error < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_int8_exports_are_integer_and_agree(name, trained_zoo, tmp_path):
    """Post-training (the converter's) and quantization-aware int8 files."""
    model, x_train, y_train, x_check = trained_zoo(name)
    assert len(x_check) >= 500
    ptq = export(
        model, tmp_path / "ptq.tflite", quantization="int8", data=x_train[:128]
    )
    assert ptq.precision.is_integer, ptq.precision.table()
    ptq_parity = tfcompress.export.verify(model, ptq, x_check)
    minimum = PTQ_MIN_AGREEMENT.get(name, 0.9)
    assert ptq_parity.top1_agreement >= minimum, str(ptq_parity)

    qat_model, report = tfcompress.quantization.quantize_model(
        model, data=x_train[:128]
    )
    if name in QAT_FIT:
        qat_model.compile(keras.optimizers.Adam(1e-4), LOSS)
        qat_model.fit(
            x_train[:256], y_train[:256], epochs=1, batch_size=64, verbose=0
        )
    float_layers = QAT_FLOAT_LAYERS.get(name, ())
    assert tuple(path for path, _ in report.float_layers) == float_layers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exported = export(
            qat_model, tmp_path / "qat.tflite", quantization="int8"
        )
    precision = exported.precision
    # Every float op of the file comes from a layer left float on purpose,
    # and the export said so.
    float_sources = {row.layers[0] if row.layers else row.name for row in precision.rows}
    assert float_sources == set(float_layers), precision.table()
    said = [w for w in caught if "compute in float" in str(w.message)]
    assert bool(said) == bool(float_layers)
    if not float_layers:
        assert precision.is_integer
        # The weights are what grows with the network: within 5% of the
        # converter's own file. The rest of a file is its graph; the QAT
        # graph's tensor names are longer (NASNet tiny: +10% of a 0.1 MB
        # file, identical weight bytes), which only matters on tiny models.
        weight_bytes = sum(precision.weight_bytes_by_dtype.values())
        ptq_weight_bytes = sum(ptq.precision.weight_bytes_by_dtype.values())
        assert weight_bytes <= 1.05 * ptq_weight_bytes, (weight_bytes, ptq_weight_bytes)
        assert exported.size_bytes <= max(
            1.05 * ptq.size_bytes, ptq.size_bytes + 16 * 1024
        ), (exported.size_bytes, ptq.size_bytes)
    parity = tfcompress.export.verify(qat_model, exported, x_check)
    if parity.top1_agreement < 0.99:
        # Only near-ties may part them: see `TIE_STEPS`.
        clear_agreement, clear_share = _agreement_beyond_ties(
            qat_model, exported.path, x_check
        )
        assert clear_share >= 0.5, (clear_share, str(parity))
        assert clear_agreement >= 0.99, (clear_agreement, str(parity))
        assert parity.top1_agreement >= 0.98, str(parity)


# Below 99% agreement, the test looks at the inputs it disagrees on: logits
# closer than this many steps of the file's int8 output are a tie
# the int8 file may break either way: each integer op may round its output
# one step off the simulation (`qat_parity`), and a few such steps reach
# the logits. A briefly trained tiny model has a few percent of such inputs
# (tiny Xception: 3% within two steps), and which side a tie falls on
# depends on the CPU the model was trained on (a CI machine measured 98.8%
# agreement where this one measures 99.6%). `benchmarks/model_zoo.py`
# reports the plain agreement of the full networks.
TIE_STEPS = 3


def _agreement_beyond_ties(qat_model, path, x):
    """Top-1 agreement on the inputs whose top two Keras logits are more
    than `TIE_STEPS` output steps apart, and the share of such inputs."""
    expected = keras.ops.convert_to_numpy(qat_model(x, training=False))
    actual = tfcompress.litert.LiteRTModel(str(path)).predict(x)
    # The file's outputs are int8 levels, dequantized: the step is the
    # smallest gap between two of them.
    step = np.min(np.diff(np.unique(actual)))
    top_two = np.sort(expected, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > TIE_STEPS * step
    agree = expected.argmax(1) == actual.argmax(1)
    return float(agree[clear].mean()), float(clear.mean())


@pytest.mark.parametrize("name", MODELS)
def test_magnitude_pruning_reaches_its_target(name, trained_zoo):
    model, x_train, y_train, _ = trained_zoo(name)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile(keras.optimizers.Adam(1e-4), LOSS)
    copy.fit(
        x_train[:128],
        y_train[:128],
        epochs=1,
        batch_size=64,
        verbose=0,
        callbacks=[
            tfcompress.callbacks.MagnitudePruning(
                tfcompress.pruning.ConstantSparsity(0.5, begin_step=0)
            )
        ],
    )
    report = tfcompress.pruning.sparsity_report(copy)
    assert report.rows
    for row in report.rows:
        assert abs(row.sparsity - 0.5) <= 1 / row.size + 1e-9, row


@pytest.mark.parametrize("name", MODELS)
def test_prune_channels_removes_channels(name, trained_zoo):
    model, _, _, x_check = trained_zoo(name)
    pruned, report = tfcompress.pruning.prune_channels(model, sparsity=0.5)
    outputs = pruned(x_check[:8], training=False)
    assert outputs.shape == (8, 10)
    if name == "lstm_text":
        # Embedding -> LSTM -> logits: the LSTM's units are a barrier.
        assert report.macs_after == report.macs_before
    else:
        assert report.macs_after < 0.75 * report.macs_before, report.table()


@pytest.mark.parametrize("name", MODELS)
def test_decompose_reaches_its_target(name, trained_zoo):
    model, _, _, x_check = trained_zoo(name)
    if name in DECOMPOSITION_UNREACHABLE:
        # The message says how close it got.
        with pytest.raises(ValueError, match="not reachable.*keeps 0.9"):
            tfcompress.decomposition.decompose(
                model, target_macs_ratio=0.8, verbose=False
            )
        return
    decomposed, report = tfcompress.decomposition.decompose(
        model, target_macs_ratio=0.8, verbose=False
    )
    assert report.macs_after <= 0.8 * report.macs_before
    assert decomposed(x_check[:8], training=False).shape == (8, 10)


@pytest.mark.parametrize("name", MODELS)
def test_keras_file_round_trip(name, trained_zoo, tmp_path):
    model, _, _, x_check = trained_zoo(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    # Called eagerly: `predict` would trace two large graphs for 32 inputs.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x_check[:32], training=False)),
        keras.ops.convert_to_numpy(model(x_check[:32], training=False)),
    )
