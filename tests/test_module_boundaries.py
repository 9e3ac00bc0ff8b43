"""The modules of tfcompress import each other without cycles, and never
reach for another module's private (leading underscore) names.

The source is read with `ast`, never imported: a cycle that Python happens
to tolerate today (because of the order things are imported in) is still
reported. Every import statement counts, at any level of the file
(function bodies included):

- `import a.b.c` imports the module `a.b.c`;
- `from a.b import c` imports the module `a.b.c` when `c` is a submodule,
  else the package `a.b`;
- a package stands for its `__init__.py`;
- importing `a.b.c` first runs the packages `a` and `a.b`, so it imports
  them too, unless the importing module is inside them (then they are
  already being imported when it runs);
- relative imports are resolved against the importing module's package.

A private name of another module is one imported (`from m import _x`) or
read off an imported module (`m._x`); dunder names are not private.
"""

import ast
import collections
import dataclasses
import pathlib

import tfcompress

PACKAGE_DIR = pathlib.Path(tfcompress.__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Import:
    """One import of `target` (a module) by `source`, where it is written."""

    source: str
    target: str
    path: str
    line: int
    text: str
    # The import names a module inside the package `target`, which Python
    # runs first.
    package_first: bool = False

    def __str__(self):
        where = f"{self.path}:{self.line}: {self.text}"
        if self.package_first:
            return f"{where}  (runs the package {self.target} first)"
        return where


def module_files(package_dir):
    """`{module name: path}` for every `.py` file under `package_dir`."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_private(name):
    return name.startswith("_") and not (
        name.startswith("__") and name.endswith("__")
    )


def is_package(modules, name):
    return modules[name].name == "__init__.py"


def enclosing_packages(modules, name):
    """The packages (of `modules`) that hold module `name`: `a`, `a.b`."""
    parts = name.split(".")
    return {
        ".".join(parts[:end])
        for end in range(1, len(parts))
        if ".".join(parts[:end]) in modules
    }


def known_prefix(modules, dotted):
    """The longest prefix of `dotted` that is one of `modules`, or None."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def absolute_base(modules, module, node):
    """The module a `from ... import` statement imports from, absolute."""
    if not node.level:
        return node.module
    if is_package(modules, module):
        package = module
    else:
        package = module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - (node.level - 1)]
    if node.module:
        parts.append(node.module)
    return ".".join(parts)


def imports_and_private_uses(modules, module, package_root):
    """The module's imports of `modules`, and its uses of private names of
    another module (imported, or read as a module's attribute)."""
    path = modules[module]
    source = path.read_text()
    tree = ast.parse(source, str(path))
    relative = str(path.relative_to(package_root.parent))
    lines = source.splitlines()
    imports, private = [], []
    # Names bound to a module of the package, for `module._name` reads.
    bound = {}

    # The packages already running when this module runs.
    running = enclosing_packages(modules, module) | {module}

    def record(node, target, found):
        text = lines[node.lineno - 1].strip()
        found.append(Import(module, target, relative, node.lineno, text))
        if found is imports:
            # The packages that hold `target` run first.
            for package in enclosing_packages(modules, target) - running:
                found.append(
                    Import(module, package, relative, node.lineno, text, True)
                )

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = known_prefix(modules, alias.name)
                if target is None:
                    continue
                record(node, target, imports)
                if any(is_private(part) for part in alias.name.split(".")):
                    record(node, target, private)
                if alias.asname:
                    bound[alias.asname] = target
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = known_prefix(modules, top)
        elif isinstance(node, ast.ImportFrom):
            base = absolute_base(modules, module, node)
            base_module = known_prefix(modules, base)
            if base_module is None:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in modules else base_module
                record(node, target, imports)
                if is_private(alias.name) or any(
                    is_private(part) for part in base.split(".")
                ):
                    record(node, target, private)
                if submodule in modules:
                    bound[alias.asname or alias.name] = submodule
    # `module._name` where `module` is bound to one of the package's modules
    # (e.g. `from tfcompress.export import interpreter`, then
    # `interpreter._TensorTracer`).
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = attribute_module(modules, bound, node.value)
        if owner is not None and owner != module and is_private(node.attr):
            record(node, owner, private)
    return imports, private


def attribute_module(modules, bound, node):
    """The module an expression like `a.b.c` stands for, or None."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = attribute_module(modules, bound, node.value)
        if owner is not None and f"{owner}.{node.attr}" in modules:
            return f"{owner}.{node.attr}"
    return None


def import_graph(package_dir):
    """`(modules, edges, private uses)` of the package under `package_dir`.

    `edges[a][b]` is the first `Import` of module b by module a.
    """
    modules = module_files(package_dir)
    edges = collections.defaultdict(dict)
    private = []
    for module in modules:
        imports, private_uses = imports_and_private_uses(
            modules, module, package_dir
        )
        for found in imports:
            if found.target != module:
                edges[module].setdefault(found.target, found)
        private += private_uses
    return modules, edges, private


def strongly_connected_components(nodes, edges):
    """Tarjan's algorithm, iterative (no recursion limit); sorted members."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def shortest_cycle_through(start, edges, allowed):
    """The shortest cycle `[start, ..., start]` within `allowed`, or None."""
    previous = {start: None}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges.get(node, {})):
            if child not in allowed:
                continue
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1] + [start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return None


def import_cycles(modules, edges):
    """Every distinct shortest cycle through a module that is in one."""
    cycles = []
    seen = set()
    for component in strongly_connected_components(sorted(modules), edges):
        if len(component) < 2:
            continue
        allowed = set(component)
        for start in component:
            cycle = shortest_cycle_through(start, edges, allowed)
            # The same cycle found from another of its modules.
            key = frozenset(zip(cycle, cycle[1:]))
            if key not in seen:
                seen.add(key)
                cycles.append(cycle)
    return sorted(cycles)


def describe_cycle(cycle, edges):
    steps = [" -> ".join(cycle)]
    for source, target in zip(cycle, cycle[1:]):
        steps.append(f"    {edges[source][target]}")
    return "\n".join(steps)


# The package's own graph, read once.
MODULES, EDGES, PRIVATE = import_graph(PACKAGE_DIR)


def test_the_import_graph_is_read():
    # Every module is found, and imports in each of their forms resolve.
    assert len(MODULES) >= 70
    assert "tfcompress.export" in EDGES["tfcompress"]  # from pkg import subpkg
    # `from tfcompress.decomposition import conv_layers`: the submodule.
    assert "tfcompress.decomposition.conv_layers" in EDGES[
        "tfcompress.decomposition.cp"
    ]
    assert sum(len(targets) for targets in EDGES.values()) >= 150


def test_no_import_cycles():
    cycles = import_cycles(MODULES, EDGES)
    report = "\n\n".join(describe_cycle(c, EDGES) for c in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s):\n\n{report}"


def test_no_private_names_used_across_modules():
    report = "\n".join(sorted({str(found) for found in PRIVATE}))
    assert not PRIVATE, (
        "private names of another tfcompress module (make them public in "
        f"the module that owns the concept):\n{report}"
    )


def write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_checks_find_cycles_and_private_names(tmp_path):
    # A throwaway package with one of each: the checks must flag them.
    package_dir = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import a\n",
            "pkg/sub/__init__.py": "from pkg.sub.a import f\n",
            # A cycle through a function-level import, and a relative one.
            "pkg/sub/a.py": "def f():\n    from . import b\n",
            "pkg/sub/b.py": "import pkg.sub.a as a\nx = a._hidden\n",
            # A package import (`from pkg.sub import f` is `pkg.sub`).
            "pkg/c.py": "from pkg.sub import f\nfrom pkg.sub.a import _g\n",
            "pkg/d.py": "import os\nfrom pkg import c\n",
            # A cycle through a package's __init__: importing pkg.e.masks
            # from pkg.f.cb runs pkg/e/__init__.py, which imports strip.
            "pkg/e/__init__.py": "from pkg.e.strip import strip\n",
            "pkg/e/strip.py": "def strip():\n    from pkg.f.cb import g\n",
            "pkg/e/masks.py": "",
            "pkg/f/__init__.py": "",
            "pkg/f/cb.py": "from pkg.e import masks\n",
        },
    )
    modules, edges, private = import_graph(package_dir)
    assert sorted(modules) == [
        "pkg", "pkg.c", "pkg.d", "pkg.e", "pkg.e.masks", "pkg.e.strip",
        "pkg.f", "pkg.f.cb", "pkg.sub", "pkg.sub.a", "pkg.sub.b",
    ]
    assert {source: sorted(targets) for source, targets in edges.items()} == {
        "pkg": ["pkg.sub", "pkg.sub.a"],
        "pkg.sub": ["pkg.sub.a"],
        "pkg.sub.a": ["pkg.sub.b"],
        "pkg.sub.b": ["pkg.sub.a"],
        "pkg.c": ["pkg.sub", "pkg.sub.a"],
        "pkg.d": ["pkg.c"],
        "pkg.e": ["pkg.e.strip"],
        "pkg.e.strip": ["pkg.f", "pkg.f.cb"],
        "pkg.f.cb": ["pkg.e", "pkg.e.masks"],
    }
    cycles = import_cycles(modules, edges)
    assert cycles == [
        ["pkg.e", "pkg.e.strip", "pkg.f.cb", "pkg.e"],
        ["pkg.sub.a", "pkg.sub.b", "pkg.sub.a"],
    ]
    assert describe_cycle(cycles[0], edges) == (
        "pkg.e -> pkg.e.strip -> pkg.f.cb -> pkg.e\n"
        "    pkg/e/__init__.py:1: from pkg.e.strip import strip\n"
        "    pkg/e/strip.py:2: from pkg.f.cb import g\n"
        "    pkg/f/cb.py:1: from pkg.e import masks"
        "  (runs the package pkg.e first)"
    )
    assert describe_cycle(cycles[1], edges) == (
        "pkg.sub.a -> pkg.sub.b -> pkg.sub.a\n"
        "    pkg/sub/a.py:2: from . import b\n"
        "    pkg/sub/b.py:1: import pkg.sub.a as a"
    )
    assert sorted(str(found) for found in private) == [
        "pkg/c.py:2: from pkg.sub.a import _g",
        "pkg/sub/b.py:2: x = a._hidden",
    ]
