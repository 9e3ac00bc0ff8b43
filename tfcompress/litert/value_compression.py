"""What an entropy coder would store for a `.tflite` file's weights.

Deep Compression (Han et al. 2016) ends with Huffman coding: after pruning
and weight sharing, a kernel's stored integers are few distinct values,
zero most of all, and a Huffman code stores the frequent ones in a bit or
two. `value_compression` measures that on a written file: each constant
tensor's elements are coded with a Huffman code of their own counts (a
real code, built with `heapq`; a per-channel quantized kernel may take a
code per channel, and a sparse one is stored as Deep Compression stores
it: zero runs and nonzero values, each Huffman-coded), and the file's size is recomputed with its
constants stored so coded. Nothing is written; LiteRT cannot run a
Huffman-coded file, so this is the size to ship (download, storage), as
the gzipped size is, not the size in memory.
"""

import dataclasses
import heapq
import math

import numpy as np

from tfcompress.litert.byte_size import format_size
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.litert.weight_values import tflite_weights

# Each distinct value of a coded tensor is listed once in its code table,
# with its code length (one byte): what a decoder needs to rebuild a
# canonical Huffman code.
CODE_LENGTH_BYTES = 1


def huffman_code_lengths(counts):
    """The code length of each symbol in a Huffman code for `counts`.

    Args:
        counts: `{symbol: count}`, counts > 0.

    Returns:
        `{symbol: length in bits}`. A single symbol gets 1 bit (a code
        needs at least one bit per symbol); no symbol, an empty dict.

    Example:

    >>> huffman_code_lengths({"a": 4, "b": 2, "c": 1, "d": 1})
    {'a': 1, 'b': 2, 'c': 3, 'd': 3}
    """
    if not counts:
        return {}
    if len(counts) == 1:
        return {symbol: 1 for symbol in counts}
    # Heap entries: (count, tie-breaker, symbols under this node). Merging
    # the two rarest nodes puts each of their symbols one bit deeper.
    heap = [
        (count, order, (symbol,))
        for order, (symbol, count) in enumerate(counts.items())
    ]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    order = len(heap)
    while len(heap) > 1:
        count_a, _, symbols_a = heapq.heappop(heap)
        count_b, _, symbols_b = heapq.heappop(heap)
        for symbol in symbols_a + symbols_b:
            lengths[symbol] += 1
        heapq.heappush(heap, (count_a + count_b, order, symbols_a + symbols_b))
        order += 1
    return lengths


def huffman_bits(values):
    """Bits of `values` (any array) coded with a Huffman code of their own.

    The total of a Huffman code is the sum of the weights of the nodes its
    construction merges, so no code lengths are needed; nodes of equal
    weight are merged in bulk (pairing the two smallest is always one of
    Huffman's choices). A float kernel has as many distinct values as
    elements: this takes milliseconds where `huffman_code_lengths`' tree
    took seconds, and every `to_tflite` export measures it.
    """
    counts = _counts(values)
    if counts.size == 0:
        return 0
    if counts.size == 1:
        return int(counts[0])  # One symbol: one bit each.
    weights, multiplicities = np.unique(counts, return_counts=True)
    groups = {int(w): int(m) for w, m in zip(weights, multiplicities)}
    heap = list(groups)
    heapq.heapify(heap)

    def add(weight, number):
        if weight in groups:
            groups[weight] += number
        else:
            groups[weight] = number
            heapq.heappush(heap, weight)

    total = 0
    while True:
        weight = heap[0]
        number = groups[weight]
        if number >= 2:
            pairs = number // 2
            total += pairs * 2 * weight
            groups[weight] = number % 2
            if not groups[weight]:
                del groups[weight]
                heapq.heappop(heap)
            add(2 * weight, pairs)
            continue
        heapq.heappop(heap)
        del groups[weight]
        if not heap:
            return total  # The root.
        other = heap[0]
        groups[other] -= 1
        if not groups[other]:
            del groups[other]
            heapq.heappop(heap)
        total += weight + other
        add(weight + other, 1)


def entropy_bits(values):
    """Shannon entropy of `values`' distribution times their number: the
    fewest bits any code of one symbol at a time can average."""
    counts = _counts(values).astype(np.float64)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def _counts(values):
    """How often each distinct value occurs (an array, in value order)."""
    flat = np.asarray(values).ravel()
    if flat.dtype.kind == "f":
        # Floats by bit pattern: -0.0 and 0.0 are two stored values.
        flat = flat.view(np.dtype(f"u{flat.dtype.itemsize}"))
    return np.unique(flat, return_counts=True)[1]


@dataclasses.dataclass(frozen=True)
class ValueCompression:
    """A `.tflite` file's constants, stored as they are and entropy-coded.

    Attributes:
        file_bytes: Size of the file.
        weight_bytes: Bytes of its constants (weights, biases, others).
        kernel_bytes: Of which the kernels (ops' weight operands).
        entropy_bytes: The constants' entropy, in bytes (each tensor its
            own distribution): no symbol-by-symbol code stores less.
        huffman_bytes: The constants Huffman-coded, each tensor with its
            own code, one per channel, or sparse (zero runs and nonzero
            values coded apart, as Deep Compression stores pruned layers),
            whichever is smallest, code tables included (each distinct
            value and its code length); a tensor that would not shrink is
            counted as stored (see `coded_tensor_bytes`).
        huffman_file_bytes: The file's size with its constants stored
            Huffman-coded: `file_bytes - weight_bytes + huffman_bytes`.
    """

    file_bytes: int
    weight_bytes: int
    kernel_bytes: int
    entropy_bytes: int
    huffman_bytes: int
    huffman_file_bytes: int

    def to_dict(self):
        """The figures as a JSON-serializable `dict`."""
        return dataclasses.asdict(self)

    def __str__(self):
        return (
            f"weights {format_size(self.weight_bytes)}, Huffman-coded "
            f"{format_size(self.huffman_bytes)} (entropy "
            f"{format_size(self.entropy_bytes)}); file "
            f"{format_size(self.file_bytes)} -> "
            f"{format_size(self.huffman_file_bytes)}"
        )


def tensor_huffman_bytes(values, element_bytes):
    """Bytes to store `values` Huffman-coded with their own code table.

    `ceil(code bits / 8)` plus, per distinct value, the value
    (`element_bytes`) and its code length (`CODE_LENGTH_BYTES`).
    """
    counts = _counts(values)
    table = len(counts) * (element_bytes + CODE_LENGTH_BYTES)
    return math.ceil(huffman_bits(values) / 8) + table


def coded_tensor_bytes(weight):
    """Bytes a Huffman coder stores for one `TFLiteWeight`: the least of

    - the tensor as it is;
    - one Huffman code for the tensor;
    - for a tensor quantized per channel, one code per channel (a
      clustered kernel holds a few float values, which per-channel int8
      scales turn into a few integers per channel, different in each);
    - sparse, as Deep Compression stores a pruned layer: the run of zeros
      before each nonzero entry (its relative index) and the nonzero values
      (one code, or one per channel), each Huffman-coded (see
      `sparse_huffman_bytes`).
    """
    values = weight.values
    if values is None:  # A type numpy cannot hold: its bytes as symbols.
        values = np.frombuffer(weight.raw, dtype=np.uint8)
    element = max(1, weight.nbytes // max(1, values.size))
    quantization = weight.quantization
    axis = None
    if quantization is not None and quantization.axis is not None:
        axis = quantization.axis
    options = [weight.nbytes, tensor_huffman_bytes(values, element)]
    if axis is not None:
        options.append(_per_channel_bytes(np.moveaxis(values, axis, 0),
                                          element))
    options.append(sparse_huffman_bytes(values, element, axis))
    return min(options)


def _per_channel_bytes(channels, element):
    return sum(tensor_huffman_bytes(channel, element) for channel in channels)


def sparse_huffman_bytes(values, element_bytes, channel_axis=None):
    """Bytes of `values` stored sparse, each part Huffman-coded.

    Deep Compression's format (Han et al. 2016): the entries are read in
    order (channel by channel when `channel_axis` is given) and only the
    nonzero ones are stored, each with the number of zeros before it; the
    zero runs are Huffman-coded with one code (a table entry of 4 bytes
    for the run and `CODE_LENGTH_BYTES` per distinct run), the nonzero
    values with one code, or one code per channel when `channel_axis` is
    given and that is smaller. The zeros after the last nonzero entry
    follow from the tensor's shape.

    Example:

    >>> values = np.array([0, 0, 3, 0, 3, 0, 0, 0, 5], dtype=np.int8)
    >>> # Runs (2, 1, 3): 5 bits; values (3, 3, 5): 3 bits; 1 byte in
    >>> # all, with tables of 3 runs (5 bytes each), 2 values (2 each).
    >>> sparse_huffman_bytes(values, 1)
    20
    """
    values = np.asarray(values)
    if channel_axis is not None:
        values = np.moveaxis(values, channel_axis, 0)
    flat = values.ravel()
    positions = np.flatnonzero(flat)
    if positions.size == 0:
        return 0  # All zeros: the shape says it all.
    runs = np.diff(positions, prepend=-1) - 1
    run_bits = huffman_bits(runs)
    run_table = len(_counts(runs)) * (4 + CODE_LENGTH_BYTES)
    nonzero = flat[positions]
    value_table = len(_counts(nonzero)) * (element_bytes + CODE_LENGTH_BYTES)
    total = (
        math.ceil((run_bits + huffman_bits(nonzero)) / 8)
        + run_table
        + value_table
    )
    if channel_axis is not None:
        # One code per channel for the values: each channel's nonzeros.
        per_channel = sum(
            tensor_huffman_bytes(row[row != 0], element_bytes)
            for row in values.reshape(values.shape[0], -1)
            if np.any(row != 0)
        )
        total = min(
            total, math.ceil(run_bits / 8) + run_table + per_channel
        )
    return total


def value_compression(path):
    """Measures a `.tflite` file's constants stored entropy-coded.

    Args:
        path: Path to a `.tflite` file, or a `TFLiteExport`.

    Returns:
        A `ValueCompression`.

    Example:

    ```python
    figures = value_compression("model_int8.tflite")
    print(figures.huffman_file_bytes / figures.file_bytes)
    ```
    """
    path = tflite_file_path(path)
    with open(path, "rb") as f:
        file_bytes = len(f.read())
    weight = kernel = entropy = coded = 0
    for tensor in tflite_weights(path):
        stored = tensor.nbytes
        weight += stored
        if tensor.kernel_of is not None:
            kernel += stored
        values = tensor.values
        if values is None:  # A type numpy cannot hold: bytes as symbols.
            values = np.frombuffer(tensor.raw, dtype=np.uint8)
        entropy += entropy_bits(values) / 8
        coded += coded_tensor_bytes(tensor)
    return ValueCompression(
        file_bytes=file_bytes,
        weight_bytes=weight,
        kernel_bytes=kernel,
        entropy_bytes=math.ceil(entropy),
        huffman_bytes=coded,
        huffman_file_bytes=file_bytes - weight + coded,
    )
