"""How a model from `attach_exits` marks its exits: one layer `exit_K` per
exit, called on the output of the layer it was attached to. The model needs
nothing else to be split into stages again, after a `.keras` round trip
too."""

EXIT_PREFIX = "exit_"


def exit_names(model):
    """Names of the exit heads of a model from `attach_exits`, in order.

    Example:

    ```python
    exit_names(with_exits)  # ["exit_0", "exit_1"]
    ```
    """
    names = [
        layer.name
        for layer in model.layers
        if layer.name.startswith(EXIT_PREFIX)
        and layer.name[len(EXIT_PREFIX) :].isdigit()
    ]
    return sorted(names, key=lambda name: int(name[len(EXIT_PREFIX) :]))


def exit_name(index):
    """The layer name of exit number `index`."""
    return f"{EXIT_PREFIX}{index}"
