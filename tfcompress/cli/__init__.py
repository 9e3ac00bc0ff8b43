"""The `tfcompress` command line.

One module per subcommand, each with `add_parser` and `run`:

- `demo`: the main job end to end on bundled digits (`make demo`);
- `profile MODEL.keras`: parameters, MACs and bytes per layer;
- `inspect FILE.tflite`: ops, dtypes, int8 share, sizes;
- `export MODEL.keras`: a float or quantized `.tflite` file;
- `verify MODEL.keras FILE.tflite --data x.npy`: LiteRT against Keras;
- `bench FILE.tflite [FILE2 ...]`: latency side by side, with ratios;
- `prune`, `decompose`, `quantize` (`transforms`): `.keras` in, `.keras`
  and a report out;
- `compress MODEL.keras --data train.npz --latency-ratio R`: the whole
  pipeline (`tfcompress.compress`) to an int8 file within a budget.

The subcommands only parse, call the library and print: the result (a
table, or JSON with `--json`) on stdout, a timed progress line per step on
stderr. TensorFlow's, the converter's and LiteRT's C++ log lines are hidden
unless `--verbose` (see `tfcompress.native_stderr`). Exit codes: 0 success,
1 failure, 2 bad input (`tfcompress.cli.common`).
"""

import argparse
import contextlib
import logging
import sys
import warnings

from tfcompress import native_stderr
from tfcompress.cli import bench
from tfcompress.cli import common
from tfcompress.cli import compress
from tfcompress.cli import demo
from tfcompress.cli import export
from tfcompress.cli import inspect
from tfcompress.cli import profile
from tfcompress.cli import transforms
from tfcompress.cli import verify

# subcommand -> run(args, progress) -> Result
RUNNERS = {
    "profile": profile.run,
    "inspect": inspect.run,
    "export": export.run,
    "verify": verify.run,
    "bench": bench.run,
    "prune": transforms.run_prune,
    "decompose": transforms.run_decompose,
    "quantize": transforms.run_quantize,
    "compress": compress.run,
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfcompress",
        description=(
            "Model compression for Keras 3, exported to TFLite (LiteRT). "
            "Run `tfcompress COMMAND --help` for a command's options."
        ),
        epilog=(
            "Exit codes: 0 success, 1 failure (conversion failed, parity "
            "below threshold), 2 bad input (missing or wrong file, data of "
            "the wrong shape, bad option)."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo.add_parser(commands)
    profile.add_parser(commands)
    inspect.add_parser(commands)
    export.add_parser(commands)
    verify.add_parser(commands)
    bench.add_parser(commands)
    transforms.add_parsers(commands)
    compress.add_parser(commands)
    return parser


def main(argv=None):
    """Runs `tfcompress ARGS`; returns the exit code.

    Args:
        argv: The arguments, without the program name. Defaults to
            `sys.argv[1:]`.
    """
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # Python-side log records of TensorFlow and absl (the C++ side is
        # hidden by `redirected` below).
        for name in ("tensorflow", "absl"):
            logging.getLogger(name).setLevel(logging.ERROR)
    stdout = sys.stdout
    with native_stderr.redirected(enabled=not args.verbose):
        with warnings.catch_warnings():
            # One line, without the library's file and line number.
            warnings.showwarning = _warning_line(args)
            code = _run(args, stdout)
    return code


def _run(args, stdout):
    progress = common.Progress()
    try:
        # Library progress lines (decompose's per layer, ...) are progress
        # too: stdout holds only the result.
        with contextlib.redirect_stdout(sys.stderr):
            if args.command == "demo":
                result = demo.run(args, progress, stdout)
            else:
                result = RUNNERS[args.command](args, progress)
    except common.CommandError as error:
        _error(args, str(error))
        return error.exit_code
    except (ValueError, FileNotFoundError) as error:
        # The library's argument and data checks: bad input.
        _error(args, str(error))
        return common.EXIT_BAD_INPUT
    except Exception as error:  # Anything else is the job failing.
        hint = "" if args.verbose else " (--verbose shows TensorFlow's log)"
        _error(args, f"failed: {type(error).__name__}: {error}{hint}")
        return common.EXIT_FAILURE
    common.print_result(result, args.json, stdout)
    if result.exit_code == common.EXIT_OK and args.command != "demo":
        progress("done")  # the demo says it itself
    return result.exit_code


def _warning_line(args):
    def show(message, category, filename, lineno, file=None, line=None):
        print(
            f"tfcompress {args.command}: {category.__name__}: {message}",
            file=sys.stderr,
            flush=True,
        )

    return show


def _error(args, message):
    print(f"tfcompress {args.command}: {message}", file=sys.stderr, flush=True)

