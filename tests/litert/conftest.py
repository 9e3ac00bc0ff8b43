from tests.tflite_fixtures import brightness_data  # noqa: F401
from tests.tflite_fixtures import conv_float  # noqa: F401
from tests.tflite_fixtures import conv_int8  # noqa: F401
from tests.tflite_fixtures import conv_int8_io_path  # noqa: F401
from tests.tflite_fixtures import conv_model  # noqa: F401
from tests.tflite_fixtures import export_dir  # noqa: F401
from tests.tflite_fixtures import fixed_batch_path  # noqa: F401
