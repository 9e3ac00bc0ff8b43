"""`quantize_model`: a Keras model rewritten for quantization-aware training."""

import keras

from tfcompress.graph import cloning
from tfcompress.graph import flattening
from tfcompress.graph import functional_graph
from tfcompress.graph import layer_tree
from tfcompress.graph import registry
from tfcompress.graph.filters import LayerFilter
from tfcompress.pruning.zero_masks import hold_zeros
from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.freezable_batch_normalization import (
    FreezableBatchNormalization,
)
from tfcompress.quantization.quantization_report import FLOAT
from tfcompress.quantization.quantization_report import INT8
from tfcompress.quantization.quantization_report import NOT_SELECTED
from tfcompress.quantization.quantization_report import QuantizationReport
from tfcompress.quantization.quantization_report import QuantizationRow
from tfcompress.quantization.range_initialization import initialize_ranges
from tfcompress.quantization.unfolded_batch_normalization import (
    UnfoldedBatchNormalization,
)
from tfcompress.quantization.rounded_kernels import RoundedKernels

# Activations TFLite fuses into the op before them.
_FUSABLE_ACTIVATIONS = ("linear", "relu", "relu6")
# The rules that round a layer's kernels: what `filters` chooses among.
_ROUNDED_KINDS = ("kernel", "rounded_kernels")


def quantize_model(
    model,
    *,
    filters=None,
    weight_bits=8,
    activation_bits=8,
    strict=False,
    data=None,
    preserve_sparsity=True,
    per_channel_weights=True,
):
    """Returns a copy of `model` that simulates TFLite's int8 arithmetic.

    The copy computes what the int8 `.tflite` file will compute, so training
    it (quantization-aware training, Jacob et al. 2018) teaches the weights
    to live with the rounding:

    - Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv1D, DepthwiseConv2D,
      Dense and EinsumDense compute with their kernels rounded to int8,
      symmetric, narrow range, one scale per output channel (on inputs of
      any rank: a transformer's token projections are int8
      FULLY_CONNECTED ops). SeparableConv2D is inlined as its depthwise
      and 1x1 convs (TFLite's two ops), the tensor between them rounded. Embedding reads its
      table rounded per tensor, as TFLite's GATHER does.
    - MultiHeadAttention and GroupQueryAttention are inlined: their
      projections are quantized EinsumDense layers, their `Q K^T` and
      `scores V` einsums (int8 BATCH_MATMUL) get their own output scales,
      their softmax TFLite's fixed int8 range (scale 1/256).
    - LayerNormalization rounds each of the int8 ops TFLite lowers it to
      (MEAN, SUB, MUL, MEAN, ADD, RSQRT, MUL, MUL, ADD). ConvNeXt's
      LayerScale folds into the Dense before it, as a batch norm would.
    - Activations are rounded to int8 per tensor (asymmetric) wherever
      TFLite gives a tensor its own scale: the model inputs; the output of
      a conv / dense with the batch norm and ReLU / ReLU6 the converter fuses
      into it (no rounding between them); adds (with a following ReLU);
      concatenations; global average pooling; softmax, sigmoid and tanh
      (on TFLite's fixed ranges), swish and hard sigmoid (op by op:
      LOGISTIC, MUL; ADD + RELU6, MUL), GELU, hard swish and other
      activations; squeeze-and-excitation multiplies; the model outputs.
      Max pooling, reshapes, dropout and channel shuffles keep their
      input's scale and get nothing; average pooling keeps it too (a
      TFLite constraint) and is rounded again on its input's range. Ranges are moving averages of
      the batch min / max, learned during `fit`.
    - A batch norm after a conv / dense stays a batch norm (trained with
      batch statistics) but can be frozen (`tfcompress.callbacks.QuantizationAwareTraining`). The
      converter folds it into the conv after per-channel rounding, which
      gives the same integers, as each channel's scale follows its largest
      weight. A batch norm with nothing to fold into (after a pooling or a
      concatenation), `Normalization` and `Rescaling` with an offset are
      int8 MUL and ADD ops in TFLite, and compute so (constants rounded
      per tensor, the product rounded).

    Nested Sequential and functional models and every composite tfcompress
    layer (`InvertedResidual`, `CPConv2D`, ...) are inlined into one flat
    functional model so that their inner convs are quantized too. The fake
    quant ops are `tf.quantization.fake_quant_*`, which the TFLite converter
    reads: `tfcompress.export.to_tflite(qat_model, path,
    quantization="int8")` needs no calibration `data`. The input model is
    not modified.

    `filters` simulates the rounding of a subset of the kernels: the other
    layers keep float kernels in training (listed in the report's float
    layers, with the reason `"not selected by filters"`), while the
    activations around them are still rounded where TFLite gives them a
    scale. Such a model converts with `to_tflite(..., quantization="int8")`
    into an all-int8 file: the converter's QAT path stores the unselected
    kernels in int8 too (per channel, the scheme `quantize_model`
    simulates), so they meet their rounding at export instead of in
    training.

    Args:
        model: A built Sequential or functional Keras model (may nest
            others).
        filters: Which layers get int8 kernels, as Keras's
            `Model.quantize(filters=...)` chooses layers: `None` (every
            layer with a quantize rule), a regular expression searched in
            each layer's name and path (`"block1"` selects the layers
            inside a composite layer `block1`, `"block1/expand"` one of
            them), a list of them, a layer class or a callable
            `fn(layer) -> bool` (called with the layers of `model`; see
            `tfcompress.graph.LayerFilter`). A string that selects no layer
            with a kernel to quantize is an error. Defaults to `None`.
        weight_bits: Bits simulated for kernels, 2 to 8. Defaults to `8`.
            Below 8 is for research (and the budget search); the exported
            file stays int8.
        activation_bits: Bits simulated for activations, 2 to 8. Defaults
            to `8`.
        strict: If `True`, raise when a selected layer with weights cannot
            be quantized, instead of leaving it in float and reporting it.
            Defaults to `False`.
        data: Optional model inputs (an array, or a list of arrays for a
            multi-input model) run through the model once in training mode
            to initialize each activation range from data. Without it,
            ranges start at [-6, 6] and the first training batch sets them.
            Defaults to `None`.
        preserve_sparsity: If `True`, the zeros of a pruned model (magnitude
            or N:M, e.g. after `tfcompress.callbacks.MagnitudePruning`)
            stay zero through quantization-aware training (pruning-preserving
            QAT, tfmot's PQAT): each kernel with exact zeros gets a
            `tfcompress.pruning.KernelMask` holding them, applied after
            every optimizer update (see `tfcompress.pruning.hold_zeros`).
            Zero rounds to zero on the symmetric int8 grid, so the int8
            kernels of the exported file keep them. A dense float model has
            no exact zeros, so this changes nothing there; hence on by
            default. The masks are not saved with the model:
            `QuantizationAwareTraining(preserve_sparsity=True)` attaches
            them again for a reloaded model. Defaults to `True`.
        per_channel_weights: If `True`, each kernel gets one int8 scale per
            output channel (TFLite's default, and the closer fit). If
            `False`, one scale per kernel, which the file then stores: a
            clustered kernel (`tfcompress.clustering`) holds at most as
            many distinct integers as it has clusters, instead of that
            many per channel (cluster-preserving QAT). Defaults to `True`.

    Returns:
        `(qat_model, report)`: the new functional model, compiled like
        `model` (with a fresh optimizer) when `model` is compiled and
        uncompiled otherwise (see `tfcompress.graph.compile_like`), and a
        `QuantizationReport`.

    Raises:
        ValueError: For a model that is not a built Sequential or
            functional model, or is already quantization-aware; bad bit
            widths or `filters`; or, with `strict=True`, a selected layer
            that cannot be quantized.

    Example:

    ```python
    qat_model, report = tfcompress.quantization.quantize_model(
        model, data=x_train[:256])
    print(report)
    qat_model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    qat_model.fit(x_train, y_train, epochs=2)
    tfcompress.to_tflite(qat_model, "model.tflite", quantization="int8")

    # Only the blocks: the stem and the classifier keep float kernels.
    qat_model, report = tfcompress.quantization.quantize_model(
        model, filters="block")
    ```
    """
    check_bits("weight_bits", weight_bits)
    check_bits("activation_bits", activation_bits)
    if not isinstance(strict, bool):
        raise ValueError(
            f"`strict` must be True or False. Received: strict={strict!r}"
        )
    if not isinstance(per_channel_weights, bool):
        raise ValueError(
            "`per_channel_weights` must be True or False. "
            f"Received: per_channel_weights={per_channel_weights!r}"
        )
    if not isinstance(preserve_sparsity, bool):
        raise ValueError(
            "`preserve_sparsity` must be True or False. "
            f"Received: preserve_sparsity={preserve_sparsity!r}"
        )
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "Expected a built Keras model (Sequential or functional). "
            f"Received: {type(model).__name__}"
            + ("" if not isinstance(model, keras.Model) else " (not built)")
        )
    _check_not_quantized(model)
    is_selected = _selection(model, filters)
    flat, paths = flattening.flatten_model(model, inline=_is_inlined)
    rewrite = _SelectiveRewrite(
        flat,
        paths,
        weight_bits,
        activation_bits,
        strict,
        is_selected=is_selected,
        per_channel_weights=per_channel_weights,
    )
    qat_model = rewrite.build(name=f"{model.name}_qat")
    if data is not None:
        initialize_ranges(qat_model, data)
    held = hold_zeros(qat_model) if preserve_sparsity else ()
    report = QuantizationReport(
        model_name=model.name,
        rows=tuple(rewrite.rows),
        output_quantizers=rewrite.num_quantizers,
        weight_bits=weight_bits,
        activation_bits=activation_bits,
        sparse_kernels=tuple((h.path, h.sparsity) for h in held),
        per_channel_weights=per_channel_weights,
    )
    return cloning.compile_like(qat_model, model), report


def _selection(model, filters):
    """`is_selected(layer, path)` of the flat model's layers for `filters`.

    The filter sees the layers of `model` itself (the flat model holds
    renamed copies), found by their path.
    """
    layer_filter = LayerFilter.get(filters)
    entries = {entry.path: entry for entry in layer_tree.walk_layers(model)}
    layer_filter.check_matches(
        [
            entry
            for entry in entries.values()
            if _kind(entry.layer) in _ROUNDED_KINDS
        ],
        "quantize_model",
    )

    def is_selected(layer, path):
        entry = entries.get(path)
        if entry is None:
            return layer_filter(layer, path)
        return layer_filter(entry.layer, path, entry.ancestors)

    return is_selected


def _is_inlined(layer):
    """Whether to inline `layer`: `False`, `True`, or the class to inline."""
    rule = _rule(layer)
    if rule is None or rule.kind != "inline":
        return False
    return rule.twin or True


def _rule(operation):
    """The quantize rule of `operation`, or `None`."""
    rule, owner = registry.lookup(operation, "quantize")
    if rule is not None and rule.exact and type(operation) is not owner:
        return None  # A subclass may compute something else.
    return None if rule is None else rule.resolve(operation)


def _check_not_quantized(model):
    for layer in layer_tree.all_layers(model):
        if isinstance(layer, ActivationQuantizer):
            raise ValueError(
                f"The model {model.name!r} is already quantization-aware (it "
                f"holds the ActivationQuantizer {layer.name!r}). Pass the "
                "original float model to quantize_model."
            )


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", str(activation))


def _kind(operation):
    rule = _rule(operation)
    return None if rule is None else rule.kind


def _is_relu(operation):
    rule = _rule(operation)
    return rule is not None and rule.is_relu(operation)


class _Rewrite:
    """Builds the quantization-aware twin of a flat functional model."""

    def __init__(
        self,
        flat,
        paths,
        weight_bits,
        activation_bits,
        strict,
        per_channel_weights=True,
    ):
        self.flat = flat
        self.paths = paths
        self.weight_bits = weight_bits
        self.per_channel_weights = per_channel_weights
        self.activation_bits = activation_bits
        self.strict = strict
        self.quantized = []
        self.float_layers = []
        self.num_quantizers = 0
        self.quantizer_names = {}
        self.replacements = {}
        self.weights_set = set()
        self.consumers = functional_graph.consumers(flat)
        self.producers = {
            id(tensor): node
            for node in functional_graph.call_nodes(flat)
            for tensor in node.outputs
        }
        self.outputs = {id(x) for x in flat.outputs}
        # `{id(tensor): ActivationQuantizer}`: whose range sets the tensor's
        # int8 scale (its own rounding, or the one before a reshape / max
        # pooling that keeps it).
        self.scale_sources = {}

    def build(self, name):
        inputs = functional_graph.fresh_inputs(self.flat)
        quantized_inputs = [
            self._quantize_output(x, f"{x.name}_quant")
            if "float" in str(x.dtype)
            else x
            for x in inputs
        ]
        outputs = functional_graph.run_graph(
            self.flat, quantized_inputs, self._node
        )
        return functional_graph.model_from(inputs, outputs, name)

    def _quantize_output(self, tensor, name, rule=None):
        self.num_quantizers += 1
        # A shared layer (an LSTM's projections, called once per step) has
        # a quantizer per call, each with its own range.
        calls = self.quantizer_names.get(name, 0)
        self.quantizer_names[name] = calls + 1
        if calls:
            name = f"{name}_{calls}"
        fixed_range = None
        if rule is not None and rule.kind == "fixed_range":
            fixed_range = rule.output_range
        quantizer = ActivationQuantizer(
            num_bits=self.activation_bits, fixed_range=fixed_range, name=name
        )
        outputs = quantizer(tensor)
        self.scale_sources[id(outputs)] = quantizer
        return outputs

    def _node(self, node, args, kwargs):
        operation = node.operation
        if isinstance(operation, keras.layers.Layer):
            layer, split_activation, new = self._replacement(operation, node)
            outputs = layer(*args, **kwargs)  # Builds a new layer.
            if new and id(layer) not in self.weights_set:
                _copy_weights(operation, layer)
                self.weights_set.add(id(layer))
        else:
            split_activation = None
            outputs = operation(*args, **kwargs)
        if split_activation is not None:
            # An activation TFLite cannot fuse: the op's output gets its own
            # scale, then the activation runs as its own op.
            base = self._name(operation)
            outputs = self._quantize_output(outputs, f"{base}_preact_quant")
            activation = keras.layers.Activation(
                split_activation, name=f"{base}_activation"
            )
            inlined = _is_inlined(activation)
            if inlined:
                return self._inlined_activation(activation, inlined, outputs)
            outputs = activation(outputs)
            return self._quantize_output(
                outputs, f"{base}_quant", _rule(activation)
            )
        flat_outputs = keras.tree.flatten(outputs)
        kind = _kind(operation)
        if kind in ("keeps_input_scale", "input_scale") and len(flat_outputs) == 1:
            source = self._scale_source(args)
            if source is not None:
                if kind == "input_scale" or self._feeds_concatenation(node):
                    # Average pooling: TFLite keeps the input's scale and
                    # rounds the mean to it; the input's quantizer, called
                    # again without learning, rounds on that same range.
                    # Before a concatenation the same explicit range keeps
                    # the converter from moving the concatenation's scale
                    # up through this op (see `QuantizeRule.concatenation`).
                    outputs = source(outputs, observe=False)
                self.scale_sources[id(outputs)] = source
                return outputs
        if len(flat_outputs) != 1 or not self._needs_quantizer(node):
            return outputs
        return self._quantize_output(
            outputs, f"{self._name(operation)}_quant", _rule(operation)
        )

    def _inlined_activation(self, activation, twin, tensor):
        """An activation TFLite runs as several ops (swish: LOGISTIC, MUL),
        its ops rewritten as nodes of the graph, each rounded where TFLite
        rounds."""
        twin = twin.from_config(activation.get_config())
        inputs = keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype)
        graph = functional_graph.functional_graph(
            keras.Model(inputs, twin.call(inputs))
        )
        self.consumers.update(functional_graph.consumers(graph))
        return functional_graph.run_graph(graph, [tensor], self._node)[0]

    def _feeds_concatenation(self, node):
        return any(
            _kind(consumer.operation) == "concatenation"
            for consumer in self.consumers.get(id(node.outputs[0]), [])
        )

    def _scale_source(self, args):
        """The quantizer whose range the first input tensor is on."""
        for tensor in keras.tree.flatten(args):
            if isinstance(tensor, keras.KerasTensor):
                return self.scale_sources.get(id(tensor))
        return None

    def _name(self, operation):
        name = getattr(operation, "name", None)
        return (name or type(operation).__name__.lower()).replace("/", "_")

    def _replacement(self, layer, node):
        """Returns `(layer, activation split off, whether it is new)`.

        A new layer is built by its first call; the caller then gives it
        the original's weights (see `_copy_weights`).
        """
        key = id(layer)
        if key not in self.replacements:
            self.replacements[key] = self._new_replacement(layer, node)
        return self.replacements[key]

    def _folds_into_producer(self, node):
        """Whether the converter folds `node` (a batch norm) into the conv /
        dense layer that computes its input."""
        producer = self.producers.get(id(node.input_tensors[0]))
        if producer is None:
            return False
        operation = producer.operation
        return (
            _kind(operation) in ("kernel", "rounded_kernels")
            and _activation_name(operation) == "linear"
            and len(self.consumers.get(id(node.input_tensors[0]), [])) == 1
        )

    def _new_replacement(self, layer, node):
        path = self.paths.get(id(layer), layer.name)
        rule = _rule(layer)
        kind = None if rule is None else rule.kind
        if kind in ("kernel", "rounded_kernels", "lookup", "lowered"):
            config = layer.get_config()
            if config.get("data_format", "channels_last") != "channels_last":
                return self._leave_float(
                    layer, path, "channels_first (TFLite is channels-last)"
                )
            split_activation = None
            if kind == "kernel":
                if _activation_name(layer) not in _FUSABLE_ACTIVATIONS:
                    split_activation = config["activation"]
                    config["activation"] = "linear"
            if kind in ("kernel", "lookup"):
                replacement = rule.twin.from_config(
                    {
                        **config,
                        "weight_bits": self.weight_bits,
                        "per_channel_weights": self.per_channel_weights,
                    }
                )
            elif kind == "lowered":
                replacement = rule.twin.from_config(
                    {
                        **config,
                        "weight_bits": self.weight_bits,
                        "activation_bits": self.activation_bits,
                    }
                )
            else:
                replacement = RoundedKernels(
                    layer,
                    rule.kernels,
                    weight_bits=self.weight_bits,
                    per_channel_weights=self.per_channel_weights,
                    name=layer.name,
                )
            self.quantized.append(path)
            if kind == "rounded_kernels":
                # It wraps the flat model's own copy, weights and all; its
                # switch starts on.
                return replacement, None, False
            return replacement, split_activation, True
        if kind == "batch_norm":
            if self._folds_into_producer(node):
                replacement = FreezableBatchNormalization.from_config(
                    layer.get_config()
                )
            else:
                # No conv before it to fold into: TFLite's MUL and ADD.
                replacement = UnfoldedBatchNormalization.from_config(
                    {
                        **layer.get_config(),
                        "weight_bits": self.weight_bits,
                        "activation_bits": self.activation_bits,
                    }
                )
            return replacement, None, True
        if kind == "keep_float":
            return self._leave_float(layer, path, rule.reason)
        if kind == "folds_into_kernel":
            # Kept as it is: the converter folds its constant into the
            # kernel before it, then rounds that per channel.
            return layer, None, False
        if layer.weights and kind != "inline":
            return self._leave_float(
                layer,
                path,
                f"{type(layer).__name__} has no quantize rule (register one "
                "with tfcompress.graph.register_layer)",
            )
        return layer, None, False

    def _leave_float(self, layer, path, reason):
        if self.strict:
            raise ValueError(
                f"quantize_model cannot quantize layer {path!r}: {reason}. "
                "Pass strict=False to leave it in float (reported), or "
                "replace the layer."
            )
        self.float_layers.append((path, reason))
        return layer, None, False

    def _needs_quantizer(self, node):
        """Whether the node's output gets its own int8 scale in TFLite."""
        operation = node.operation
        output = node.outputs[0]
        if "float" not in str(output.dtype):
            return False
        kind = _kind(operation)
        if kind in ("keeps_input_scale", "lookup"):
            return False
        if id(output) in self.outputs:
            return True
        consumers = self.consumers.get(id(output), [])
        if len(consumers) != 1:
            return True
        consumer = consumers[0].operation
        if _kind(consumer) == "concatenation" and kind != "fixed_range":
            # Read by a concatenation only: the converter computes it on the
            # concatenation's scale directly, rounding once, as the
            # concatenation's own rounding does here.
            return False
        # Conv / Dense (+ BN or a per-channel scale) (+ ReLU) and Add + ReLU
        # are one TFLite op.
        if kind in ("kernel", "rounded_kernels") and (
            _activation_name(operation) == "linear"
        ):
            if _kind(consumer) in ("batch_norm", "folds_into_kernel"):
                return False
            if _is_relu(consumer):
                return False
        if kind in ("batch_norm", "folds_into_kernel", "add") and _is_relu(
            consumer
        ):
            return False
        return True


class _SelectiveRewrite(_Rewrite):
    """`_Rewrite` that leaves the layers `filters` did not select in float,
    and lists every layer with weights, in graph order, as report rows."""

    def __init__(self, *args, is_selected, per_channel_weights=True):
        super().__init__(*args, per_channel_weights=per_channel_weights)
        self.is_selected = is_selected
        self.rows = []

    def _new_replacement(self, layer, node):
        path = self.paths.get(id(layer), layer.name)
        quantized, floats = len(self.quantized), len(self.float_layers)
        if (
            layer.weights
            and _kind(layer) not in ("inline", "batch_norm")
            and not self.is_selected(layer, path)
        ):
            # Not selected: float, whatever its rule, and never an error.
            self.float_layers.append((path, NOT_SELECTED))
            replacement = (layer, None, None)
        else:
            replacement = super()._new_replacement(layer, node)
        layer_type = type(layer).__name__
        for path in self.quantized[quantized:]:
            self.rows.append(QuantizationRow(path, layer_type, INT8))
        for path, reason in self.float_layers[floats:]:
            self.rows.append(QuantizationRow(path, layer_type, FLOAT, reason))
        return replacement


def _copy_weights(original, twin):
    """Gives `twin` the weights of the layer it replaces.

    A twin holds the original's weights first, in the same order, then
    state of its own (switches, ranges), which keeps its initial values.
    """
    for target, source in zip(twin.weights, original.weights):
        if tuple(target.shape) != tuple(source.shape):
            raise ValueError(
                f"{type(twin).__name__} {twin.name!r} does not hold the "
                f"weights of {type(original).__name__} in order: "
                f"{target.path} has shape {tuple(target.shape)}, "
                f"{source.path} has shape {tuple(source.shape)}"
            )
        target.assign(source)
