"""The one shape of every tool's result: `Report` and `Row`.

Every model-level tool returns `(model, report)` (or, for measurements,
a report alone). Each report is a frozen dataclass with a `rows` field and
the same four ways to read it: `rows`, `row(name)`, `table()` (a
fixed-width text table; `str(report)` is the same) and `to_dict()` (JSON
ready). `format_table` renders the tables, so they all look alike.
"""

import dataclasses
import json


def _to_plain(value):
    """`value` with tuples as lists and rows / reports as dicts."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _to_plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_plain(item) for key, item in value.items()}
    return value


class Row:
    """Base of a report row: a frozen dataclass with a `name` field.

    `summary` lists properties that `to_dict()` adds to the fields.
    """

    summary = ()

    def to_dict(self):
        """Returns the row as a JSON-serializable `dict`."""
        result = {
            field.name: _to_plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        for name in self.summary:
            result[name] = _to_plain(getattr(self, name))
        return result


class Report:
    """Base of a tool's report: a frozen dataclass with a `rows` field.

    Subclasses implement `table()`; `summary` lists properties that
    `to_dict()` adds to the fields (derived figures such as a ratio).
    """

    summary = ()

    def row(self, name):
        """Returns the row named `name`.

        Raises:
            KeyError: If no row has that name; the message lists the rows.
        """
        for row in self.rows:
            if row.name == name:
                return row
        names = ", ".join(repr(row.name) for row in self.rows) or "none"
        raise KeyError(f"No row named {name!r}. Rows: {names}")

    def table(self):
        """Returns the report as a fixed-width text table."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement table()."
        )

    def to_dict(self):
        """Returns the report as a JSON-serializable `dict`."""
        result = {
            field.name: _to_plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        for name in self.summary:
            result[name] = _to_plain(getattr(self, name))
        return result

    def to_json(self, indent=2):
        """Returns `to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self):
        return self.table()


def format_table(headers, rows, right_aligned=None, rules=()):
    """Renders `rows` under `headers` as fixed-width lines.

    Args:
        headers: Column titles.
        rows: Sequences of cell strings, one per column.
        right_aligned: One bool per column (numbers read best aligned
            right); defaults to every column but the first.
        rules: Indices of rows to draw a rule above (e.g. a totals row).

    Returns:
        The lines, header and rule first, without trailing spaces.
    """
    headers = [str(cell) for cell in headers]
    rows = [[str(cell) for cell in row] for row in rows]
    if right_aligned is None:
        right_aligned = [False] + [True] * (len(headers) - 1)
    widths = [
        max(len(line[i]) for line in [headers, *rows])
        for i in range(len(headers))
    ]

    def render(cells):
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, right_aligned)
        ).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    lines = [render(headers), rule]
    for index, row in enumerate(rows):
        if index in rules:
            lines.append(rule)
        lines.append(render(row))
    return lines
