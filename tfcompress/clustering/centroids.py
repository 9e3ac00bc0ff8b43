"""Where a kernel's shared values start, and which value each entry takes.

The numpy side of weight clustering (`kernel_clusters.py` keeps the result
on a live kernel). tfmot's three initializations, with its names:

- `"linear"`: evenly spaced between the smallest and largest weight; keeps
  the large weights (few, important) their own centroids.
- `"density"`: at evenly spaced quantiles of the weights (tfmot's
  density-based: equal steps of the CDF), so dense regions get more.
- `"kmeans++"`: k-means on the weights, seeded with k-means++ (scikit-learn's
  `KMeans`), Deep Compression's choice; the centroids minimize the squared
  error to the weights before any fine-tuning.
"""

import numpy as np

CENTROID_INITIALIZATIONS = ("kmeans++", "linear", "density")


def check_initialization(method):
    """Returns `method` if it is a known initialization, else raises."""
    if method not in CENTROID_INITIALIZATIONS:
        raise ValueError(
            f"`centroid_initialization` must be one of "
            f"{CENTROID_INITIALIZATIONS}. "
            f"Received: centroid_initialization={method!r}"
        )
    return method


def initial_centroids(values, number_of_clusters, method="kmeans++", seed=0):
    """Initial centroids for `values`, sorted.

    Args:
        values: Array of weights (any shape).
        number_of_clusters: How many centroids, >= 1.
        method: `"kmeans++"`, `"linear"` or `"density"`. Defaults to
            `"kmeans++"`.
        seed: Random seed of k-means++. Defaults to `0`.

    Returns:
        A sorted float64 array of at most `number_of_clusters` distinct
        centroids (fewer when `values` has fewer distinct values, which
        are then the centroids).

    Example:

    >>> initial_centroids(np.array([0.0, 1.0, 2.0, 10.0]), 2, "linear")
    array([ 0., 10.])
    """
    check_initialization(method)
    flat = np.asarray(values, dtype=np.float64).ravel()
    distinct = np.unique(flat)
    if distinct.size <= number_of_clusters:
        return distinct
    if method == "linear":
        centroids = np.linspace(flat.min(), flat.max(), number_of_clusters)
    elif method == "density":
        levels = (np.arange(number_of_clusters) + 0.5) / number_of_clusters
        centroids = np.quantile(flat, levels)
    else:
        # Imported here: only k-means++ needs scikit-learn.
        from sklearn.cluster import KMeans

        kmeans = KMeans(
            n_clusters=number_of_clusters,
            init="k-means++",
            n_init=1,
            random_state=seed,
        ).fit(flat[:, None])
        centroids = kmeans.cluster_centers_.ravel()
    return np.unique(centroids)


def nearest_centroid(values, centroids):
    """Index of the nearest of the sorted `centroids` for each value."""
    centroids = np.asarray(centroids, dtype=np.float64)
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(midpoints, np.asarray(values, dtype=np.float64))
