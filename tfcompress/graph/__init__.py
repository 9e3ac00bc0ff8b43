"""The graph core: how tfcompress reads and rebuilds Keras models.

Every model-level tool (the profiler, magnitude and channel pruning,
quantization-aware training, decomposition) is a transform on top of this
package:

- `layer_tree`: a model's layers at any depth, named by path
  (`walk_layers`, `all_layers`, `sublayers`).
- `functional_graph`: the nodes of a Sequential or functional model, in
  order, and `run_graph` to re-run them with some nodes replaced.
- `cloning`: `clone_model` with replacements, `copy_layer`, and the compile
  policy every tool shares (`compile_like`).
- `flattening`: `flatten_model`, one flat graph of primitive layers.
- `filters`: `LayerFilter`, the `filters` argument of every tool (Keras's
  `Model.quantize(filters=...)` semantics, a regex also searched in each
  layer's path).
- `registry`: what each tool knows about each layer class
  (`register_layer`); the one place to add support for a new layer.
- `keras_internals`: the only module that touches Keras's private
  attributes, each access explained and tested.
"""

from tfcompress.graph import cloning
from tfcompress.graph import filters
from tfcompress.graph import flattening
from tfcompress.graph import functional_graph
from tfcompress.graph import keras_internals
from tfcompress.graph import layer_tree
from tfcompress.graph import registry
from tfcompress.graph.cloning import clone_model
from tfcompress.graph.cloning import compile_like
from tfcompress.graph.cloning import copy_layer
from tfcompress.graph.filters import LayerFilter
from tfcompress.graph.flattening import flatten_model
from tfcompress.graph.functional_graph import functional_graph as graph_of
from tfcompress.graph.functional_graph import is_graph_model
from tfcompress.graph.functional_graph import run_graph
from tfcompress.graph.layer_tree import LayerPath
from tfcompress.graph.layer_tree import all_layers
from tfcompress.graph.layer_tree import walk_layers
from tfcompress.graph.registry import PrunableKernel
from tfcompress.graph.registry import register_layer
from tfcompress.graph.registry import unregister_layer

__all__ = [
    "cloning",
    "filters",
    "flattening",
    "functional_graph",
    "keras_internals",
    "layer_tree",
    "registry",
    "LayerFilter",
    "LayerPath",
    "PrunableKernel",
    "all_layers",
    "clone_model",
    "compile_like",
    "copy_layer",
    "flatten_model",
    "graph_of",
    "is_graph_model",
    "register_layer",
    "run_graph",
    "unregister_layer",
    "walk_layers",
]
