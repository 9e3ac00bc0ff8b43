"""TensorLy is optional (the `decomposition` extra): without it tfcompress
imports, SVD works, and CP and Tucker-2 say which extra to install."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

import tfcompress
from tfcompress.decomposition.tensorly_import import INSTALL_COMMAND

# Run in a fresh interpreter where `import tensorly` fails, as it does when
# the extra is not installed. Prints what it measured as JSON.
WITHOUT_TENSORLY = """
import json
import sys

sys.modules["tensorly"] = None  # `import tensorly` now raises ImportError.

import keras
import numpy as np

import tfcompress
import tfcompress.decomposition
from tfcompress.decomposition import cp_factors
from tfcompress.decomposition import decompose
from tfcompress.decomposition import svd_factors
from tfcompress.decomposition import tucker2_factors

result = {}
rng = np.random.default_rng(0)
matrix = rng.normal(size=(12, 7))
u, v = svd_factors(matrix, 3)
singular_values = np.linalg.svd(matrix, compute_uv=False)
result["svd_error"] = float(np.linalg.norm(u @ v - matrix))
result["eckart_young_error"] = float(np.linalg.norm(singular_values[3:]))

model = keras.Sequential([
    keras.Input((16,)),
    keras.layers.Dense(32, activation="relu", name="hidden"),
    keras.layers.Dense(4, name="logits"),
])
new_model, report = decompose(model, method="svd", rank=2, filters=["hidden"],
                              verbose=False)
result["svd_layer"] = type(new_model.get_layer("hidden")).__name__

kernel = rng.normal(size=(3, 3, 4, 6))
for name, call in [
    ("cp_factors", lambda: cp_factors(kernel, 2)),
    ("tucker2_factors", lambda: tucker2_factors(kernel, 2)),
]:
    try:
        call()
        result[name] = None
    except ImportError as error:
        result[name] = str(error)
conv = keras.Sequential([
    keras.Input((8, 8, 4)),
    keras.layers.Conv2D(6, 3, name="conv"),
])
try:
    decompose(conv, method="cp", rank=2, verbose=False)
    result["decompose_cp"] = None
except ImportError as error:
    result["decompose_cp"] = str(error)
print(json.dumps(result))
"""


def run_without_tensorly():
    repository = pathlib.Path(tfcompress.__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(repository), env.get("PYTHONPATH", "")]
    )
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORLY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_without_tensorly_svd_works_and_cp_tucker2_name_the_extra():
    result = run_without_tensorly()
    # SVD needs only numpy: the best rank-3 approximation (Eckart-Young).
    np.testing.assert_allclose(
        result["svd_error"], result["eckart_young_error"], rtol=1e-5
    )
    assert result["svd_layer"] == "LowRankDense"
    for name in ("cp_factors", "tucker2_factors"):
        assert result[name] is not None, f"{name} ran without TensorLy"
        assert result[name].startswith(f"{name} needs TensorLy")
        assert 'pip install "tfcompress[decomposition]"' in result[name]
    assert 'pip install "tfcompress[decomposition]"' in result["decompose_cp"]


def test_install_command_names_the_extra_declared_in_pyproject():
    import tomllib

    pyproject = pathlib.Path(tfcompress.__file__).resolve().parents[1]
    with open(pyproject / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert INSTALL_COMMAND == 'pip install "tfcompress[decomposition]"'
    assert any(r.startswith("tensorly") for r in extras["decomposition"])
