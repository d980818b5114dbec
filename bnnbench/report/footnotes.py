"""Footnotes of the paper's table: one mechanism for every marker, in every format.

A number that means something else than its neighbours must say so where it stands, not in a
CSV column nobody reads. Three kinds of marker, each a symbol beside the number and its text
below the table:

  row marks   a boolean leaderboard column that qualifies a whole row, after the row's label
              (ROW_MARKS: start_on_test → †, kd → § for cells trained with a teacher). A new
              per-row property is one more RowMark here, and every format shows it.
  budget      ‡ on the cells of a column whose total epochs differ; the cell then shows its
              own epochs (a column with one budget shows it in its header instead)
  caveats     the note of the published number (results/reference/*.csv: teacher or none,
              backbone variant, real-valued pre-training, ...), numbered 1, 2, … beside it
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class RowMark:
    column: str      # a boolean leaderboard column
    symbol: str
    text: str


ROW_MARKS = (
    RowMark("start_on_test", "†", "a later stage started from the previous stage's epoch of "
            "best test top-1 (init_from = best, as the official BiPer/ReCU code), a choice "
            "made on the test set"),
    RowMark("kd", "§", "knowledge distillation: trained against a teacher cell's outputs "
            "(the teacher ids and the loss are in leaderboard.csv's teacher and distill columns)"),
)
BUDGET = RowMark("epochs", "‡", "the cells of this column trained different total epochs "
                 "(shown in the cell, over all stages): a longer budget alone can explain a gap")


class Footnotes:
    """The footnotes of one table, in first-use order: symbol → text."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def use(self, symbol: str, text: str) -> str:
        self.items.setdefault(symbol, text)
        return symbol

    def caveat(self, note: str) -> str:
        """The number of `note` (the same note keeps its number); "" for no note."""
        if not note:
            return ""
        for symbol, text in self.items.items():
            if symbol.isdigit() and text == note:
                return symbol
        return self.use(str(1 + sum(s.isdigit() for s in self.items)), note)

    def row_marks(self, row: pd.Series) -> list[str]:
        """The symbols of the ROW_MARKS that hold for leaderboard `row`."""
        return [self.use(m.symbol, m.text) for m in ROW_MARKS
                if pd.notna(row.get(m.column)) and bool(row.get(m.column))]

    def budget(self) -> str:
        return self.use(BUDGET.symbol, BUDGET.text)
