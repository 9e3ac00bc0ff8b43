"""Hardware-aware architecture search over tfcompress blocks."""

import keras
import numpy as np
import optuna
import pytest

from tfcompress.analysis import profile
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual
from tfcompress.layers import PartialConv2D
from tfcompress.layers import ShuffleConv2D
from tfcompress.search import SearchSpace
from tfcompress.search import ArchitectureTrial
from tfcompress.search import Stage
from tfcompress.search import mnasnet_reward
from tfcompress.search import search_architecture
from tfcompress.search.architecture.report import pareto_front
from tfcompress.search.architecture.search import best_of

# The layer each block type is made of (one per block).
BLOCK_LAYERS = {
    "separable": DepthwiseSeparableConv2D,
    "inverted_residual": InvertedResidual,
    "shuffle": ShuffleConv2D,  # Two per block: expand and project.
    "partial": PartialConv2D,
}
# Two small stages for 8x8 inputs: the models train in a second.
TINY = SearchSpace(
    (8, 8, 1),
    10,
    stages=(
        Stage(strides=1, widths=(4, 8), depths=(1, 2)),
        Stage(strides=2, widths=(8, 16), depths=(1, 2)),
    ),
    stem_widths=(4, 8),
)


def test_sampled_models_are_built_as_their_choices_say():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        choices = TINY.sample(study.ask())
        model = TINY.build(choices)
        assert tuple(model.output.shape) == (None, 10)
        stem = model.get_layer("stem")
        assert stem.filters == choices["stem_width"]
        assert stem.strides == (choices["stem_stride"],) * 2
        size = 8 // choices["stem_stride"]
        for i, stage in enumerate(TINY.stages):
            block = choices[f"stage{i}_block"]
            seen.add(block)
            assert (f"stage{i}_expansion" in choices) == (block != "separable")
            size //= stage.strides
            layers = [
                layer
                for layer in model.layers
                if layer.name.startswith(f"stage{i}_")
                and isinstance(layer, BLOCK_LAYERS[block])
            ]
            per_block = 2 if block == "shuffle" else 1
            assert len(layers) == per_block * choices[f"stage{i}_depth"]
            last = model.get_layer(model.layers[-3].name)  # Before the pool.
            if i == len(TINY.stages) - 1:
                assert tuple(last.output.shape) == (
                    None,
                    size,
                    size,
                    choices[f"stage{i}_width"],
                )
            kernel = choices[f"stage{i}_kernel"]
            if block == "inverted_residual":
                assert layers[0].kernel_size == (kernel, kernel)
                assert layers[0].expansion == choices[f"stage{i}_expansion"]
            if block == "partial":
                assert layers[0].kernel_size == (kernel, kernel)
    assert seen == set(BLOCK_LAYERS)
    assert TINY.size == 2 * 2 * (2 + 3 * 2 * 3) ** 2 * (2 * 2) ** 2


def test_reward_penalizes_latency_over_the_target():
    assert mnasnet_reward(0.9, 1.0, 1.0) == pytest.approx(0.9)
    assert mnasnet_reward(0.9, 2.0, 1.0) == pytest.approx(0.9 * 2**-0.07)
    assert mnasnet_reward(0.9, 2.0, 1.0) < 0.9 < mnasnet_reward(0.9, 0.5, 1.0)
    # MnasNet's hard constraint: nothing gained under, halved at 2x over.
    assert mnasnet_reward(0.9, 0.5, 1.0, (0.0, -1.0)) == pytest.approx(0.9)
    assert mnasnet_reward(0.9, 2.0, 1.0, (0.0, -1.0)) == pytest.approx(0.45)


def _row(name, accuracy, latency_ms, target_ms=1.0):
    return ArchitectureTrial(
        name=name,
        choices={},
        description="",
        accuracy=accuracy,
        latency_ms=latency_ms,
        latency_ratio=latency_ms,
        estimated_latency_ms=latency_ms,
        macs=1,
        params=1,
        tflite_bytes=1,
        reward=mnasnet_reward(accuracy, latency_ms, target_ms),
        within_target=latency_ms <= target_ms,
        seconds=0.0,
    )


def test_pareto_front_and_the_answer_respect_the_target():
    rows = [
        _row("fast", 0.80, 0.5),
        _row("dominated", 0.79, 0.9),
        _row("within", 0.85, 1.0),
        _row("over", 0.90, 1.5),
    ]
    assert pareto_front(rows) == ("fast", "within", "over")
    # The most accurate within the target, not the most accurate overall.
    assert best_of(rows).name == "within"
    # None within: the highest reward, which the latency penalizes.
    over = [_row("a", 0.90, 4.0), _row("b", 0.89, 1.1)]
    assert best_of(over).name == "b"


def test_search_measures_real_numbers_and_saves_plain_keras(digits, tmp_path):
    x_train, y_train, x_test, y_test = digits
    path = tmp_path / "found.keras"
    # A target no model meets: every trial is penalized, the search still
    # returns the one of highest reward, and says none met the target.
    model, report = search_architecture(
        space=TINY,
        data=(x_train[:64], y_train[:64]),
        validation_data=(x_test[:64], y_test[:64]),
        latency_target_ms=1e-4,
        trials=2,
        epochs=1,
        latency_runs=20,
        path=path,
        verbose=0,
    )
    assert len(report.rows) == 2
    for row in report.rows:
        assert row.latency_ms > 0 and row.estimated_latency_ms > 0
        assert row.tflite_bytes > 0 and 0 <= row.accuracy <= 1
        built = profile(TINY.build(row.choices))
        assert (row.macs, row.params) == (int(built.macs), int(built.params))
        assert not row.within_target
        assert row.reward == pytest.approx(
            mnasnet_reward(row.accuracy, row.estimated_latency_ms, 1e-4)
        )
        assert row.reward < row.accuracy
    best = report.best_row
    assert best.reward == max(row.reward for row in report.rows)
    assert report.trials_within_target == 0
    assert "none met the target" in report.table()
    assert set(report.pareto) <= {row.name for row in report.rows}
    assert report.pareto
    assert profile(model).macs == best.macs
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = x_test[:8]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert report.to_dict()["best_accuracy"] == best.accuracy


def test_bad_arguments_name_what_they_received(digits):
    x_train, y_train, x_test, y_test = digits
    data, validation = (x_train[:8], y_train[:8]), (x_test[:8], y_test[:8])
    kwargs = dict(space=TINY, data=data, validation_data=validation)
    with pytest.raises(ValueError, match="latency_target_ms=-1"):
        search_architecture(**kwargs, latency_target_ms=-1)
    with pytest.raises(ValueError, match="Give a `latency_target_ms`, or a `reference`"):
        search_architecture(**kwargs)
    with pytest.raises(ValueError, match="strategy='rl'"):
        search_architecture(**kwargs, latency_target_ms=1, strategy="rl")
    with pytest.raises(ValueError, match="latency_weight=0.5"):
        search_architecture(**kwargs, latency_target_ms=1, latency_weight=0.5)
    with pytest.raises(ValueError, match=r"latency_weight=\(0, 1\)"):
        search_architecture(**kwargs, latency_target_ms=1, latency_weight=(0, 1))
    with pytest.raises(ValueError, match=r"input_shape \(8, 8, 1\)"):
        search_architecture(
            space=TINY, data=(x_train[:8, :4], y_train[:8]),
            validation_data=validation, latency_target_ms=1,
        )
    with pytest.raises(ValueError, match="widths"):
        Stage(strides=1, widths=(), depths=(1,))
    with pytest.raises(ValueError, match="block_types"):
        SearchSpace((8, 8, 1), 10, block_types=())
    with pytest.raises(ValueError, match="block_types"):
        SearchSpace((8, 8, 1), 10, block_types=("dense",))
    with pytest.raises(ValueError, match="strides=3"):
        Stage(strides=3, widths=(8,), depths=(1,))
    with pytest.raises(ValueError, match="stem_width"):
        TINY.build({**TINY.default_choices(), "stem_width": 6})
    with pytest.raises(ValueError, match="missing"):
        TINY.build({"stem_width": 4})
