"""Terminal tables that never cut a number or a name. A table is a list of columns, each cell written in
full and optionally in shorter units; when printed, the first layout that fits the console's width whole is
used: the table, then the table in shorter units with less padding, then one block of `key  value` lines
per row. Numbers are never broken; names wrap between words and fold only where a word is wider than the
whole terminal."""

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

WIDE = 10_000  # a width no table reaches: a table measured at it takes its natural width


@dataclass(frozen=True)
class Column:
    """One column: its header and cells as printed in full, and optionally in shorter units (`1.24 B`
    for 1,235,818,496), tried before the vertical layout. A name column wraps between words; any other
    column is a number, right-aligned and never broken."""

    header: str
    cells: Sequence[str]
    name: bool = False
    short_header: str | None = None
    short_cells: Sequence[str] | None = None

    def shown(self, short: bool) -> tuple[str, Sequence[str]]:
        if short and self.short_cells is not None:
            return self.short_header or self.header, self.short_cells
        return self.header, self.cells

    def least(self, short: bool) -> int:
        """The narrowest this column can be without breaking a number or a word."""
        header, cells = self.shown(short)
        return max(_longest_word(header), *(_longest_word(c) if self.name else cell_len(c) for c in cells))

    def natural(self, short: bool) -> int:
        header, cells = self.shown(short)
        return max(
            cell_len(header), *(max((cell_len(line) for line in c.splitlines()), default=0) for c in cells)
        )


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _widths(least: list[int], natural: list[int], room: int) -> list[int] | None:
    """Column widths within `room`: each column its least width, then the spare room to the columns
    nearest their natural width first (the fewest columns wrap); None when the least widths do not fit."""
    widths = list(least)
    spare = room - sum(widths)
    if spare < 0:
        return None
    for index in sorted(range(len(widths)), key=lambda i: natural[i] - least[i]):
        grant = min(spare, natural[index] - widths[index])
        widths[index] += grant
        spare -= grant
    return widths


class FitTable:
    """A rich renderable: the table in the first layout that fits the width it is rendered at."""

    def __init__(self, columns: Sequence[Column], title: str | None = None, caption: str | None = None):
        self.columns = list(columns)
        self.title = title
        self.caption = caption

    @property
    def rows(self) -> int:
        return len(self.columns[0].cells) if self.columns else 0

    def _table(self, short: bool, widths: list[int] | None = None) -> Table:
        compact = {"box": box.SIMPLE_HEAD, "collapse_padding": True, "show_edge": False} if short else {}
        table = Table(title=self.title, caption=self.caption, padding=(0, 1), **compact)
        for index, column in enumerate(self.columns):
            header, _ = column.shown(short)
            table.add_column(
                Text(header, overflow="fold", no_wrap=False),  # headers wrap between words
                justify="left" if column.name else "right",
                no_wrap=not column.name,
                overflow="fold",
                width=widths[index] if widths else None,
            )
        for row in range(self.rows):
            table.add_row(*(Text(c.shown(short)[1][row], overflow="fold") for c in self.columns))
        return table

    def fitted(self, console: Console, options: ConsoleOptions, short: bool) -> Table | None:
        """The table in this layout at the options' width, or None when a number or word would be cut."""
        least = [c.least(short) for c in self.columns]
        measure = Measurement.get(console, options.update_width(WIDE), self._table(short, least))
        overhead = measure.maximum - sum(least)
        widths = _widths(least, [c.natural(short) for c in self.columns], options.max_width - overhead)
        return None if widths is None else self._table(short, widths)

    def blocks(self) -> RenderResult:
        """One block per row: its first cell as a heading, then `header  value` for every other column."""
        if self.title:
            yield Text(self.title, style="italic")
        for row in range(self.rows):
            yield Text(self.columns[0].cells[row], style="bold", overflow="fold")
            grid = Table.grid(padding=(0, 2))
            grid.add_column(overflow="fold")
            grid.add_column(overflow="fold")
            for column in self.columns[1:]:
                grid.add_row(Text(column.header), Text(column.cells[row]))
            yield Padding(grid, (0, 0, 0, 2), expand=False)
        if self.caption:
            yield Text(self.caption, style="dim")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for short in (False, True):
            table = self.fitted(console, options, short)
            if table is not None:
                yield table
                return
        yield from self.blocks()


def _scaled(value: float, units: Sequence[tuple[float, str]], smallest: float, whole: str) -> str:
    """`value` in the largest unit it reaches, three significant digits (999.7 M reads `1 B`, not `1e+03 M`);
    `whole` below `smallest`."""
    if abs(value) < smallest:
        return whole
    size, unit = next(((s, u) for s, u in units if abs(value) >= s * 0.9995), units[-1])
    return f"{value / size:.3g} {unit}"


def count_short(value: int | None) -> str:
    """A count in three significant digits: 1,235,818,496 -> `1.24 B`, 856,064 -> `856 K`, 9,999 whole."""
    if value is None:
        return "–"
    return _scaled(value, ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")), 1e4, f"{value:,}")


def bytes_short(value: int | None) -> str:
    """Bytes in binary units, three significant digits: `4.6 GiB`, `3.27 MiB`, `16 KiB`."""
    if value is None:
        return "–"
    units = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
    return _scaled(value, units, 2**10, f"{value} B")


def mib(value: int | None) -> str:
    """Bytes as MiB with one decimal, more below 0.1 MiB so that a small figure does not read as zero."""
    if value is None:
        return "–"
    scaled = value / 2**20
    return f"{scaled:,.1f}" if scaled >= 0.1 or value == 0 else f"{scaled:.2g}"
