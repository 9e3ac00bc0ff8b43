"""One BLAS thread for the decompositions' many small SVDs.

The factorizations (NumPy's SVD, TensorLy's HOOI and ALS) are hundreds of
small LAPACK calls. OpenBLAS's worker threads spin while they wait; beside
TensorFlow's thread pools and any other busy process they only steal each
other's cores. On the shared 2-core machine the full ResNet50's
`decompose(target_macs_ratio=0.5)` took 405 s with OpenBLAS's default
threads and 61 s with one (a 128x288 SVD: 2.7 s vs 0.03 s).
"""

import contextlib


def single_blas_thread():
    """A context in which NumPy's BLAS/LAPACK use one thread.

    Uses `threadpoolctl` (installed with the `decomposition` extra, and by
    scikit-learn); without it, a context that changes nothing.
    """
    try:
        import threadpoolctl
    except ImportError:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(1, user_api="blas")
