"""Keeping TensorFlow's and LiteRT's C++ log lines off the terminal.

TensorFlow, its TFLite converter and the LiteRT interpreter log from C++
straight to file descriptor 2, where Python's `logging` and `warnings`
cannot filter them: `I0000 ... loader.cc` lines while converting,
`fully_quantize: 0, inference_type: 6, ...` (a plain `fprintf`),
`INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`. The environment
variable `TF_CPP_MIN_LOG_LEVEL` hides some of them, but not the lines
TensorFlow prints while it is imported (before `absl::InitializeLog`), nor
the converter's and LiteRT's own prints (measured with TensorFlow 2.21:
`TF_CPP_MIN_LOG_LEVEL=3` still leaves 8 lines on an int8 export and run).

The one way that hides them all is to point descriptor 2 somewhere else
while the C++ code runs: `redirected()` does, and gives Python's
`sys.stderr` a copy of the real descriptor meanwhile, so tracebacks,
warnings and the command line's own messages still reach the terminal.

`quiet_command_line()` says whether this process is the `tfcompress`
command without `--verbose`: `tfcompress/__init__.py` asks it before it
imports TensorFlow (the command's `main` only runs after the package, and
so TensorFlow, has been imported). The library itself, imported by a
user's program, prints what TensorFlow prints.

Standard library only: it runs before TensorFlow is imported.
"""

import contextlib
import os
import sys
import tempfile

# What `tfcompress --verbose` spells: everything TensorFlow says is shown.
VERBOSE_FLAG = "--verbose"


def quiet_command_line(argv=None, orig_argv=None):
    """Whether this process is the `tfcompress` command, not `--verbose`.

    The command runs as the console script `tfcompress` or as `python -m
    tfcompress`; while the package is being imported by the latter,
    `sys.argv[0]` is `"-m"`, so the interpreter's own command line
    (`sys.orig_argv`) tells which module runs.
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if not argv:
        return False
    script = os.path.basename(argv[0])
    as_module = any(
        flag == "-m" and module == "tfcompress"
        for flag, module in zip(orig_argv, orig_argv[1:])
    )
    is_command = script == "tfcompress" or (argv[0] == "-m" and as_module)
    return is_command and VERBOSE_FLAG not in argv[1:]


def import_tensorflow():
    """Imports TensorFlow, quietly when `quiet_command_line()`.

    For the command line, also sets `TF_CPP_MIN_LOG_LEVEL=2` (unless the
    environment sets it), before the import as TensorFlow reads it then:
    fewer lines to hide later.
    """
    if not quiet_command_line():
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with redirected():
        import tensorflow  # noqa: F401


def _stderr_is_descriptor_2():
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        # Replaced by an in-memory stream (pytest's capsys, a notebook):
        # Python's writes do not go through descriptor 2 then.
        return False


@contextlib.contextmanager
def redirected(enabled=True):
    """Points descriptor 2 at a temporary file while the block runs.

    Python's `sys.stderr`, if it wrote to descriptor 2, writes to a copy of
    the real one meanwhile, so only what C++ code (and Python log handlers
    bound to the old stream) writes is hidden. The descriptor is restored
    on exit, also when the block raises.

    Args:
        enabled: Whether to redirect; `False` runs the block unchanged (the
            `--verbose` case). Defaults to `True`.

    Yields:
        The temporary file the hidden lines went to (binary, readable after
        `seek(0)`), or `None` when not enabled.
    """
    if not enabled:
        yield None
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    python_stderr = sys.stderr
    try:
        real_stderr = os.dup(2)
    except OSError:
        # No descriptor 2 (a daemon, say): nothing reaches a terminal.
        yield None
        return
    hidden = tempfile.TemporaryFile()
    os.dup2(hidden.fileno(), 2)
    copy = None
    if _stderr_is_descriptor_2():
        copy = open(
            real_stderr,
            "w",
            buffering=1,
            encoding=getattr(python_stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            closefd=False,
        )
        sys.stderr = copy
    try:
        yield hidden
    finally:
        if copy is not None:
            copy.flush()
            copy.close()  # closefd=False: the descriptor stays open
            sys.stderr = python_stderr
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        hidden.close()
