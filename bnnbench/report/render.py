"""leaderboard.md and leaderboard.tex: the tables of bnnbench.report.tables, a section per dataset.

Each section holds the paper's table with its legend and footnotes, the statistics and
budget of every row, and (given a ranking) the ranking with its stability across seeds.
The LaTeX is booktabs tables (pandas Styler) in `table` floats, ready to `\\input` into a
paper that loads booktabs.
"""
from __future__ import annotations

import pandas as pd

from .tables import (LATEX, MARKDOWN, RANK_LEGEND, build, details, frame, latex_escape, legend,
                     markdown_table, note_lines, ranks)


def _per_dataset(board: pd.DataFrame, rank: pd.DataFrame | None):
    """(table, the dataset's leaderboard rows, its ranking or None) per dataset."""
    for table in build(board):
        rows = board[board["dataset"] == table.dataset]
        sub = None if rank is None else rank[rank["dataset"] == table.dataset]
        yield table, rows, sub


def to_markdown(board: pd.DataFrame, rank: pd.DataFrame | None = None) -> str:
    """The paper-style tables (leaderboard.md); `rank`: stats.ranking's table, if wanted."""
    lines = ["# bnnbench leaderboard", ""]
    if board.empty:
        return "\n".join(lines + ["No runs found.", ""])
    for table, rows, sub in _per_dataset(board, rank):
        texts, _ = frame(table, MARKDOWN)
        lines += [f"## {table.dataset}", "", *markdown_table(texts), "", legend(table), ""]
        lines += [f"{line}  " for line in note_lines(table, MARKDOWN)]
        lines += ["", f"### {table.dataset}: statistics and budget per row", "",
                  *markdown_table(details(rows, MARKDOWN).set_index("arch"), "arch"), ""]
        if sub is not None and len(sub):
            lines += [f"### {table.dataset}: ranking", "",
                      *markdown_table(ranks(sub, MARKDOWN).set_index("binarizer")), "",
                      RANK_LEGEND, ""]
    return "\n".join(lines)


def _latex_float(texts: pd.DataFrame, caption: str, label: str, notes: list[str]) -> str:
    """One booktabs table float (the index a first column); `notes` go under the tabular."""
    texts = texts.reset_index()
    latex = texts.style.hide(axis="index").to_latex(
        hrules=True, environment="table", position="htbp", position_float="centering",
        caption=caption, label=label, column_format="l" + "c" * (len(texts.columns) - 1))
    if notes:
        block = "\\par\\smallskip\\footnotesize\n" + "\\\\\n".join(notes) + "\n"
        latex = latex.replace("\\end{table}", block + "\\end{table}")
    return latex


def to_latex(board: pd.DataFrame, rank: pd.DataFrame | None = None) -> str:
    """leaderboard.tex: per dataset the paper's table, the statistics and the ranking."""
    parts = ["% bnnbench leaderboard: \\input{leaderboard.tex}; needs \\usepackage{booktabs}\n"]
    for table, rows, sub in _per_dataset(board, rank):
        texts, _ = frame(table, LATEX)
        texts.index.name = "binarizer"
        name = latex_escape(table.dataset)
        parts.append(_latex_float(texts, f"{name}: {latex_escape(legend(table))}",
                                  f"tab:bnnbench-{table.dataset}", note_lines(table, LATEX)))
        parts.append(_latex_float(details(rows, LATEX).set_index("arch"),
                                  f"{name}: statistics and budget per row",
                                  f"tab:bnnbench-{table.dataset}-stats", []))
        if sub is not None and len(sub):
            parts.append(_latex_float(ranks(sub, LATEX).set_index("binarizer"),
                                      f"{name}: ranking. {latex_escape(RANK_LEGEND)}",
                                      f"tab:bnnbench-{table.dataset}-ranking", []))
    return "\n".join(parts)
