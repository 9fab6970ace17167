"""Print a table so that it reads at the console's width, a terminal's or a pipe's (COLUMNS, else 80).

A rich table is used when it fits with no number broken across lines (headers and names may wrap at
spaces). Otherwise rich would squeeze the columns until numbers break, so the table is printed as a
narrow list instead: one heading per row and its `column: value` pairs, broken only between pairs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

UNBOUNDED = 10_000  # a width no table reaches: measuring against it gives a table's natural width
NARROWEST = 24  # below this even the narrow list cannot keep its indents; it is wrapped as if this


@dataclass(frozen=True, slots=True)
class Grid:
    """A table's content as plain text, before it is given a layout."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    show_header: bool = True  # False: a two-column list of figures, a name and its value
    numbers: bool = True  # right-align every column but the first
    heading: str = "{}"  # how the narrow list names a row, from the row's first cell


def _table(grid: Grid, widths: Sequence[int] | None) -> Table:
    table = Table(title=grid.title, show_header=grid.show_header)
    for index, column in enumerate(grid.columns):
        table.add_column(
            Text(column),
            justify="right" if index and grid.numbers else "left",
            style="bold" if index == 0 and not grid.show_header else None,
            width=widths[index] if widths else None,
        )
    for row in grid.rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: a cell's brackets are not markup
    return table


def _natural_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update_width(UNBOUNDED), table).maximum


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _column_floors(grid: Grid) -> tuple[list[int], list[int], list[int]]:
    """Per column: its natural content width; its width with the header wrapped at spaces; and its
    narrowest, with text cells (the first column's, or every cell of a list of figures) wrapped too.
    A number is never wrapped."""
    natural, headers_wrapped, narrowest = [], [], []
    for index, column in enumerate(grid.columns):
        cells = [row[index] for row in grid.rows]
        header = column if grid.show_header else ""
        text = index == 0 or not grid.numbers
        widest_cell = max((cell_len(cell) for cell in cells), default=0)
        unbroken = max((_longest_word(c) if text else cell_len(c) for c in cells), default=0)
        natural.append(max(cell_len(header), widest_cell))
        headers_wrapped.append(max(_longest_word(header), widest_cell))
        narrowest.append(max(_longest_word(header), unbroken))
    return natural, headers_wrapped, narrowest


def _narrowed(widths: list[int], floors: Sequence[int], excess: int) -> int:
    """Take up to `excess` off `widths`, in place, one at a time from the widest column still above
    its floor (as rich shares out a squeeze); returns the excess left."""
    while excess > 0:
        above = [i for i, width in enumerate(widths) if width > floors[i]]
        if not above:
            break
        widths[max(above, key=lambda i: widths[i])] -= 1
        excess -= 1
    return excess


def fitted_table(console: Console, grid: Grid, width: int) -> Table | None:
    """The grid as a rich table no wider than `width` with no number broken, or None. Headers wrap
    first, then names."""
    table = _table(grid, None)
    natural_width = _natural_width(console, table)
    if natural_width <= width:
        return table
    widths, headers_wrapped, narrowest = _column_floors(grid)
    excess = _narrowed(widths, headers_wrapped, natural_width - width)
    if _narrowed(widths, narrowest, excess):
        return None
    table = _table(grid, widths)
    return table if _natural_width(console, table) <= width else None


def wrapped(text: str, width: int, indent: str) -> list[str]:
    """`text` on lines of at most `width`, the first indented by `indent`, the rest two more."""
    return textwrap.wrap(
        text,
        width=max(width, NARROWEST),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _packed(items: Sequence[str], width: int, indent: str) -> list[str]:
    """`items` joined by ', ' on lines of at most `width`, broken only between items."""
    lines: list[str] = []
    current = ""
    for item in items:
        joined = f"{current}, {item}" if current else item
        if len(indent) + len(joined) <= max(width, NARROWEST):
            current = joined
            continue
        if current:
            lines.append(indent + current)
        if len(indent) + len(item) <= max(width, NARROWEST):
            current = item
        else:  # an item longer than a line is wrapped on lines of its own
            lines.extend(wrapped(item, width, indent))
            current = ""
    if current:
        lines.append(indent + current)
    return lines


def narrow_body(grid: Grid, width: int) -> list[str]:
    """The grid's rows as a list of lines of at most `width` (NARROWEST, for a narrower `width`)."""
    lines = []
    for first, *rest in grid.rows:
        if not grid.show_header:
            lines.extend(wrapped(f"{first}: {' '.join(rest)}", width, "  "))
            continue
        lines.extend(wrapped(grid.heading.format(first), width, "  "))
        pairs = [f"{column}: {value}" for column, value in zip(grid.columns[1:], rest, strict=True)]
        lines.extend(_packed(pairs, width, "    "))
    return lines


def show(console: Console, grid: Grid) -> None:
    """Print `grid` as a table when it fits the console, else as the narrow list."""
    table = fitted_table(console, grid, console.width)
    if table is not None:
        console.print(table)
        return
    for line in wrapped(grid.title, console.width, ""):
        console.print(Text(line, style="bold"))
    for line in narrow_body(grid, console.width):
        console.print(Text(line))
    console.print()
