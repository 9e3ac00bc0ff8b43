"""Byte counts as people read them."""


def format_size(num_bytes):
    """Formats a byte count in B, KiB or MiB.

    Args:
        num_bytes: A number of bytes, an integer >= 0.

    Returns:
        A string such as `"152 B"`, `"10.2 KiB"` or `"3.41 MiB"`.

    Example:

    ```python
    format_size(10_444)  # "10.2 KiB"
    ```
    """
    if num_bytes < 1024:
        return f"{num_bytes} B"
    if num_bytes < 1024**2:
        return f"{num_bytes / 1024:.1f} KiB"
    return f"{num_bytes / 1024**2:.2f} MiB"
