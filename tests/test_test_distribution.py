"""`make test`'s two workers keep each test module on one of them.

Modules train models in module-scoped fixtures; spread over both workers,
each worker trains them again (the layer tests' models: 35 s on each).
`tests/conftest.py` groups every test by its module, the zoo tier by
model, and pytest-xdist's `--dist loadgroup` keeps a group on one worker
by a suffix on the test's node id, which its worker adds only if the
marks are there first, and only on pytest < 9.2
(pytest-dev/pytest-xdist#1386). Under `make test` this fails if either
stops working; run alone, without workers, it is skipped.
"""

import os

import pytest


def test_this_module_is_one_group(request):
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        pytest.skip("not run by pytest-xdist workers")
    # On a worker, pytest-xdist keeps `--dist` as this flag.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run with --dist loadgroup")
    assert request.node.nodeid.endswith("@tests/test_test_distribution.py"), (
        f"{request.node.nodeid!r} has no group suffix: pytest-xdist will "
        "spread this module's tests over the workers. Is pytest >= 9.2 "
        "installed (pytest-dev/pytest-xdist#1386), or did the marks of "
        "tests/conftest.py come after pytest-xdist read them?"
    )
