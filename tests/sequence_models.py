"""Small recurrent models and synthetic sequence tasks they learn in seconds,
for the tests of recurrent export and pruning.

Trained models, because the agreement of a quantized file with its Keras
model only means something when the model's predictions have margins: an
untrained classifier's logits are so close that int8 rounding flips them.
"""

import keras
import numpy as np

TIMESTEPS = 8
VOCABULARY = 40
NUM_CLASSES = 3
AUDIO_SHAPE = (24, 6)
L = keras.layers


def text_data(num_examples, seed=0, timesteps=TIMESTEPS):
    """Token sequences whose class is the marker token (1, 2 or 3) they
    hold three times, among random tokens >= 4."""
    rng = np.random.default_rng(seed)
    x = rng.integers(4, VOCABULARY, (num_examples, timesteps))
    y = rng.integers(0, NUM_CLASSES, num_examples)
    for i in range(num_examples):
        x[i, rng.choice(timesteps, 3, replace=False)] = y[i] + 1
    return x.astype("int32"), y


def audio_data(num_examples, seed=0):
    """Noisy multi-band sine "spectrogram frames" whose class is their
    frequency."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, NUM_CLASSES, num_examples)
    frequency = np.array([0.2, 0.5, 1.0])[y][:, None, None]
    steps = np.arange(AUDIO_SHAPE[0])[None, :, None]
    bands = (1 + np.arange(AUDIO_SHAPE[1]))[None, None, :] / 3
    x = np.sin(frequency * steps * bands)
    x = x + 0.3 * rng.normal(size=(num_examples, *AUDIO_SHAPE))
    return x.astype("float32"), y


def _text_input():
    return keras.Input((TIMESTEPS,), dtype="int32")


# Recurrent kernels of at least 1024 entries, so that dynamic range
# quantization (which leaves smaller tensors in float) quantizes them.
MODELS = {
    "embedding_lstm": lambda: keras.Sequential(
        [
            _text_input(),
            L.Embedding(VOCABULARY, 8, name="embedding"),
            L.LSTM(16, name="lstm"),
            L.Dense(NUM_CLASSES, name="logits"),
        ],
        name="embedding_lstm",
    ),
    "embedding_gru": lambda: keras.Sequential(
        [
            _text_input(),
            L.Embedding(VOCABULARY, 8, name="embedding"),
            L.GRU(20, name="gru"),
            L.Dense(NUM_CLASSES, name="logits"),
        ],
        name="embedding_gru",
    ),
    "bidirectional_lstm": lambda: keras.Sequential(
        [
            _text_input(),
            L.Embedding(VOCABULARY, 8, name="embedding"),
            L.Bidirectional(L.LSTM(16), name="bidirectional"),
            L.Dense(NUM_CLASSES, name="logits"),
        ],
        name="bidirectional_lstm",
    ),
    "conv1d_gru": lambda: keras.Sequential(
        [
            keras.Input(AUDIO_SHAPE),
            L.Conv1D(8, 3, strides=2, activation="relu", name="conv1d"),
            L.GRU(20, return_sequences=True, name="gru"),
            L.GlobalAveragePooling1D(),
            L.Dense(NUM_CLASSES, name="logits"),
        ],
        name="conv1d_gru",
    ),
}


def data_for(name, num_examples, seed=0):
    """`(x, y)` of the task of model `name`."""
    if name == "conv1d_gru":
        return audio_data(num_examples, seed)
    return text_data(num_examples, seed)


def trained_model(name, epochs=6, seed=0):
    """Model `name` of `MODELS`, trained on 300 examples of its task."""
    keras.utils.set_random_seed(seed)
    model = MODELS[name]()
    x, y = data_for(name, 300, seed)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model
