"""What an architecture search may choose: `SearchSpace` and `Stage`.

The space is MnasNet's factorized hierarchical one (Tan et al. 2019),
sized for small images: a 3x3 stem convolution, then stages that each
repeat one block `depth` times, the first block with the stage's stride;
each stage picks its own block type, kernel size, expansion, width and
depth, so that different resolutions can get different blocks. The
blocks are tfcompress layers (`DepthwiseSeparableConv2D`,
`InvertedResidual`, `ShuffleConv2D`, `PartialConv2D`) joined by standard
Keras layers: a candidate is a plain functional `keras.Model` that saves
to `.keras` and loads with `safe_mode=True`.

`sample(trial)` draws a candidate's choices from an Optuna trial (an
expansion only for the blocks that have one, so no trial spends a choice
that changes nothing); `build(choices)` turns them into the model.
"""

import dataclasses
import math
import numbers

import keras

from tfcompress import argument_validation
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual
from tfcompress.layers import PartialConv2D
from tfcompress.layers import ShuffleConv2D

# The block types, by the name a search's choices use.
BLOCK_TYPES = ("separable", "inverted_residual", "shuffle", "partial")
# The block types whose hidden width is `expansion` times a width.
EXPANDING = ("inverted_residual", "shuffle", "partial")
# Short names for one-line descriptions.
_SHORT = {
    "separable": "DS",
    "inverted_residual": "IR",
    "shuffle": "SH",
    "partial": "PC",
}
# Batch normalization momentum, as `small_mobilenet_v2`: the moving
# statistics settle within the few hundred steps of a short training.
_MOMENTUM = 0.9


def _choices(name, values):
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive ints. "
            f"Received: {name}={values!r}"
        )
    return values



@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a `SearchSpace`: its stride and the widths and depths
    it may take.

    Args:
        strides: Stride of the stage's first block (`1` or `2`).
        widths: Output channels it may have (positive even ints: a
            shuffle block splits channels into groups).
        depths: Numbers of blocks it may repeat (positive ints).
    """

    strides: int
    widths: tuple
    depths: tuple

    def __post_init__(self):
        if self.strides not in (1, 2):
            raise ValueError(
                "A stage's `strides` must be 1 or 2. Received: "
                f"strides={self.strides!r}"
            )
        object.__setattr__(self, "widths", _choices("widths", self.widths))
        object.__setattr__(self, "depths", _choices("depths", self.depths))
        odd = [w for w in self.widths if w % 2]
        if odd:
            raise ValueError(
                "A stage's `widths` must be even (a shuffle block splits "
                f"channels into groups). Received: widths={self.widths!r}"
            )


# Sized for 28x28 (Fashion-MNIST) down to 8x8 inputs: at most three
# halvings, and widths around `small_mobilenet_v2`'s 16 and 32.
DEFAULT_STAGES = (
    Stage(strides=1, widths=(8, 12, 16, 24), depths=(1, 2)),
    Stage(strides=2, widths=(16, 24, 32, 48), depths=(1, 2, 3)),
    Stage(strides=2, widths=(32, 48, 64, 96), depths=(1, 2, 3)),
)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The architectures an architecture search chooses from.

    Args:
        input_shape: `(height, width, channels)` of one example.
        num_classes: Positive int, the classifier's outputs (logits).
        stages: `Stage`s, in order. Defaults to `DEFAULT_STAGES`: three
            stages for 8x8 to 32x32 images (strides 1, 2, 2).
        block_types: Block types each stage may use, from
            `"separable"` (`DepthwiseSeparableConv2D`),
            `"inverted_residual"` (`InvertedResidual`), `"shuffle"`
            (ShuffleNet unit of two `ShuffleConv2D` around a depthwise
            convolution) and `"partial"` (FasterNet block: `PartialConv2D`
            then two 1x1 convolutions, residual). Defaults to all four.
        kernel_sizes: Depthwise / partial kernel sizes. Defaults to
            `(3, 5)`.
        expansions: Hidden width factors of the expanding blocks.
            Defaults to `(2, 4, 6)`.
        stem_widths: Output channels of the 3x3 stem (even ints).
            Defaults to `(8, 16)`.
        stem_strides: Strides the stem may have. Defaults to `(1, 2)`.

    Example:

    ```python
    space = SearchSpace((28, 28, 1), 10)
    model = space.build(space.default_choices())
    study = optuna.create_study()
    choices = space.sample(study.ask())
    ```
    """

    input_shape: tuple
    num_classes: int
    stages: tuple = DEFAULT_STAGES
    block_types: tuple = BLOCK_TYPES
    kernel_sizes: tuple = (3, 5)
    expansions: tuple = (2, 4, 6)
    stem_widths: tuple = (8, 16)
    stem_strides: tuple = (1, 2)

    def __post_init__(self):
        shape = tuple(self.input_shape)
        if len(shape) != 3 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(
                "`input_shape` must be (height, width, channels), positive "
                f"ints. Received: input_shape={self.input_shape!r}"
            )
        object.__setattr__(self, "input_shape", shape)
        argument_validation.positive_int("num_classes", self.num_classes)
        stages = tuple(self.stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise ValueError(
                "`stages` must be a non-empty sequence of `Stage`s. "
                f"Received: stages={self.stages!r}"
            )
        object.__setattr__(self, "stages", stages)
        block_types = tuple(self.block_types)
        unknown = [b for b in block_types if b not in BLOCK_TYPES]
        if not block_types or unknown:
            raise ValueError(
                f"`block_types` must be a non-empty sequence of {BLOCK_TYPES}."
                f" Received: block_types={self.block_types!r}"
            )
        object.__setattr__(self, "block_types", block_types)
        for name in ("kernel_sizes", "stem_widths"):
            object.__setattr__(self, name, _choices(name, getattr(self, name)))
        if any(w % 2 for w in self.stem_widths):
            raise ValueError(
                "`stem_widths` must be even. Received: "
                f"stem_widths={self.stem_widths!r}"
            )
        strides = _choices("stem_strides", self.stem_strides)
        if any(s not in (1, 2) for s in strides):
            raise ValueError(
                f"`stem_strides` must be 1 or 2. Received: stem_strides={strides!r}"
            )
        object.__setattr__(self, "stem_strides", strides)
        expansions = tuple(self.expansions)
        if not expansions or not all(
            isinstance(e, numbers.Real) and not isinstance(e, bool) and e >= 1
            for e in expansions
        ):
            raise ValueError(
                "`expansions` must be a non-empty sequence of numbers >= 1. "
                f"Received: expansions={self.expansions!r}"
            )
        object.__setattr__(self, "expansions", expansions)

    @property
    def size(self):
        """How many distinct architectures the space holds."""
        per_block = sum(
            len(self.kernel_sizes) * (len(self.expansions) if b in EXPANDING else 1)
            for b in self.block_types
        )
        total = len(self.stem_widths) * len(self.stem_strides)
        for stage in self.stages:
            total *= per_block * len(stage.widths) * len(stage.depths)
        return total

    def sample(self, trial):
        """A candidate's choices, drawn from an Optuna `trial`.

        Returns:
            A dict of plain values (what `build` takes): `stem_width`,
            `stem_stride`, and per stage `i` `stage{i}_block`,
            `stage{i}_kernel`, `stage{i}_width`, `stage{i}_depth`, and
            `stage{i}_expansion` for the expanding block types.
        """
        choices = {
            "stem_width": trial.suggest_categorical("stem_width", self.stem_widths),
            "stem_stride": trial.suggest_categorical(
                "stem_stride", self.stem_strides
            ),
        }
        for i, stage in enumerate(self.stages):
            block = trial.suggest_categorical(f"stage{i}_block", self.block_types)
            choices[f"stage{i}_block"] = block
            for key, values in (
                ("kernel", self.kernel_sizes),
                ("width", stage.widths),
                ("depth", stage.depths),
            ):
                choices[f"stage{i}_{key}"] = trial.suggest_categorical(
                    f"stage{i}_{key}", values
                )
            if block in EXPANDING:
                choices[f"stage{i}_expansion"] = trial.suggest_categorical(
                    f"stage{i}_expansion", self.expansions
                )
        return choices

    def default_choices(self):
        """The first choice of everything: a small, valid candidate."""
        choices = {
            "stem_width": self.stem_widths[0],
            "stem_stride": self.stem_strides[0],
        }
        for i, stage in enumerate(self.stages):
            block = self.block_types[0]
            choices.update(
                {
                    f"stage{i}_block": block,
                    f"stage{i}_kernel": self.kernel_sizes[0],
                    f"stage{i}_width": stage.widths[0],
                    f"stage{i}_depth": stage.depths[0],
                }
            )
            if block in EXPANDING:
                choices[f"stage{i}_expansion"] = self.expansions[0]
        return choices

    def check(self, choices):
        """Raises `ValueError` unless `choices` is a candidate of this space."""
        if not isinstance(choices, dict):
            raise ValueError(
                f"`choices` must be a dict (from `sample`). Received: {choices!r}"
            )
        expected = {
            "stem_width": self.stem_widths,
            "stem_stride": self.stem_strides,
        }
        for i, stage in enumerate(self.stages):
            block = choices.get(f"stage{i}_block")
            expected[f"stage{i}_block"] = self.block_types
            expected[f"stage{i}_kernel"] = self.kernel_sizes
            expected[f"stage{i}_width"] = stage.widths
            expected[f"stage{i}_depth"] = stage.depths
            if block in EXPANDING:
                expected[f"stage{i}_expansion"] = self.expansions
        extra = sorted(set(choices) - set(expected))
        missing = sorted(set(expected) - set(choices))
        if extra or missing:
            raise ValueError(
                "`choices` do not match the space: "
                + (f"missing {missing}" if missing else "")
                + ("; " if extra and missing else "")
                + (f"not in the space {extra}" if extra else "")
            )
        for key, allowed in expected.items():
            if choices[key] not in allowed:
                raise ValueError(
                    f"`{key}` must be one of {allowed}. Received: "
                    f"{key}={choices[key]!r}"
                )

    def build(self, choices, name="searched"):
        """The candidate `choices` describes, as a functional `keras.Model`.

        Returns logits (no softmax), as `small_mobilenet_v2`.

        Raises:
            ValueError: If `choices` is not a candidate of this space.
        """
        self.check(choices)
        inputs = keras.Input(self.input_shape, name="image")
        x = keras.layers.Conv2D(
            choices["stem_width"],
            3,
            strides=choices["stem_stride"],
            padding="same",
            use_bias=False,
            name="stem",
        )(inputs)
        x = keras.layers.BatchNormalization(momentum=_MOMENTUM, name="stem_bn")(x)
        x = keras.layers.ReLU(6.0, name="stem_relu")(x)
        for i, stage in enumerate(self.stages):
            block = choices[f"stage{i}_block"]
            for j in range(choices[f"stage{i}_depth"]):
                x = _BUILDERS[block](
                    x,
                    width=choices[f"stage{i}_width"],
                    kernel_size=choices[f"stage{i}_kernel"],
                    expansion=choices.get(f"stage{i}_expansion", 1),
                    strides=stage.strides if j == 0 else 1,
                    name=f"stage{i}_block{j}",
                )
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        outputs = keras.layers.Dense(self.num_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name=name)

    def describe(self, choices):
        """One line: the stem, then each stage as type, kernel, expansion,
        width x depth (`"stem 16/1 | IR k3 e4 16x2 | ..."`)."""
        parts = [f"stem {choices['stem_width']}/{choices['stem_stride']}"]
        for i in range(len(self.stages)):
            block = choices[f"stage{i}_block"]
            expansion = (
                f" e{choices[f'stage{i}_expansion']:g}" if block in EXPANDING else ""
            )
            parts.append(
                f"{_SHORT[block]} k{choices[f'stage{i}_kernel']}{expansion} "
                f"{choices[f'stage{i}_width']}x{choices[f'stage{i}_depth']}"
            )
        return " | ".join(parts)


# Blocks: `builder(x, *, width, kernel_size, expansion, strides, name)`.


def _batch_norm(name):
    return keras.layers.BatchNormalization(momentum=_MOMENTUM, name=name)


def _separable(x, *, width, kernel_size, expansion, strides, name):
    del expansion  # A depthwise-separable block has no hidden width.
    return DepthwiseSeparableConv2D(
        width, kernel_size=kernel_size, strides=strides, momentum=_MOMENTUM, name=name
    )(x)


def _inverted_residual(x, *, width, kernel_size, expansion, strides, name):
    return InvertedResidual(
        width,
        expansion=expansion,
        strides=strides,
        kernel_size=kernel_size,
        momentum=_MOMENTUM,
        name=name,
    )(x)


def _groups(*channels):
    """The most groups (of 4, 2, 1) that divide every channel count."""
    return next(g for g in (4, 2, 1) if all(c % g == 0 for c in channels))


def _shuffle(x, *, width, kernel_size, expansion, strides, name):
    """ShuffleNet unit: grouped 1x1 + shuffle, depthwise, grouped 1x1.

    Linear after the last grouped convolution, and a residual add when
    the shape allows it, as the inverted residual block.
    """
    channels = x.shape[-1]
    groups = _groups(channels, width)
    hidden = max(groups, groups * round(channels * expansion / groups))
    h = ShuffleConv2D(
        hidden, groups, activation="relu6", use_bias=False, name=f"{name}_expand"
    )(x)
    h = _batch_norm(f"{name}_expand_bn")(h)
    h = keras.layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        name=f"{name}_depthwise",
    )(h)
    h = _batch_norm(f"{name}_depthwise_bn")(h)
    h = ShuffleConv2D(
        width, groups, shuffle=False, use_bias=False, name=f"{name}_project"
    )(h)
    h = _batch_norm(f"{name}_project_bn")(h)
    if strides == 1 and channels == width:
        h = keras.layers.Add(name=f"{name}_add")([x, h])
    return h


def _partial(x, *, width, kernel_size, expansion, strides, name):
    """FasterNet block: PConv, 1x1 expand, 1x1 project, residual add.

    A stride or a change of width goes first through FasterNet's merging
    layer (a 2x2 stride-2 convolution, or 1x1 when only the width
    changes), since the block itself keeps its input's shape.
    """
    if strides != 1 or x.shape[-1] != width:
        x = keras.layers.Conv2D(
            width,
            strides,
            strides=strides,
            use_bias=False,
            name=f"{name}_merge",
        )(x)
        x = _batch_norm(f"{name}_merge_bn")(x)
    h = PartialConv2D(
        n_div=min(4, width), kernel_size=kernel_size, name=f"{name}_partial"
    )(x)
    h = keras.layers.Conv2D(
        max(1, math.ceil(width * expansion)), 1, use_bias=False, name=f"{name}_expand"
    )(h)
    h = _batch_norm(f"{name}_expand_bn")(h)
    h = keras.layers.ReLU(6.0, name=f"{name}_relu")(h)
    h = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_project")(h)
    h = _batch_norm(f"{name}_project_bn")(h)
    return keras.layers.Add(name=f"{name}_add")([x, h])


_BUILDERS = {
    "separable": _separable,
    "inverted_residual": _inverted_residual,
    "shuffle": _shuffle,
    "partial": _partial,
}
