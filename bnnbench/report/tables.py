"""The paper's table per dataset, built once and rendered as Markdown or LaTeX (and HTML by
bnnbench.report.html), so every format shows the same numbers, bests and footnotes.

Rows are binarizers (with their swept setting), columns archs; a cell reads
"ours ± sd (published)": our final-epoch top-1 mean ± sample std over seeds, the published
top-1 in parentheses. Bold: the tied leaders of the column (bnnbench.report.stats). A column whose
cells share one total budget shows its epochs in the header; otherwise each cell shows its
own epochs with the budget footnote (bnnbench.report.footnotes).
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .footnotes import Footnotes


@dataclass
class Entry:
    """One cell of the table."""
    mean: float
    std: float
    n: int
    published: float
    best: bool
    epochs: float | None = None     # shown when the column's budgets differ
    marks: list[str] = field(default_factory=list)   # after our number
    caveat: str = ""                                 # after the published number


@dataclass
class PaperTable:
    dataset: str
    rows: list[str]                   # row labels, the row marks apart
    row_marks: dict[str, list[str]]
    columns: list[str]
    column_epochs: dict[str, float | None]   # the column's one total budget, or None
    entries: dict[tuple[str, str], Entry]
    notes: Footnotes
    seeds: str                        # "3 seeds per cell", ...
    has_published: bool               # any published number to show in parentheses
    one_seed: bool                    # no cell has two seeds: no best can be marked


@dataclass(frozen=True)
class Style:
    """How a format writes text, ±, superscripts and bold."""
    escape: Callable[[str], str]
    pm: str
    sup: Callable[[str], str]
    bold: Callable[[str], str]
    dash: str


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_LATEX_SYMBOLS = {"†": r"\dagger", "‡": r"\ddagger"}
_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}",
                                                    "^": r"\^{}", "\\": r"\textbackslash{}",
                                                    "ω": r"$\omega$", "±": r"$\pm$",
                                                    "†": r"\dag{}", "‡": r"\ddag{}",
                                                    "–": "--", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


MARKDOWN = Style(escape=lambda s: str(s).replace("|", r"\|"), pm=" ± ",
                 sup=lambda s: s.translate(_SUPERSCRIPTS), bold=lambda s: f"**{s}**", dash="–")
LATEX = Style(escape=latex_escape, pm=r" $\pm$ ",
              sup=lambda s: f"$^{{{_LATEX_SYMBOLS.get(s, s)}}}$",
              bold=lambda s: rf"\textbf{{{s}}}", dash="--")
HTML = Style(escape=html.escape, pm=" ± ", sup=lambda s: f"<sup>{html.escape(s)}</sup>",
             bold=lambda s: f"<strong>{s}</strong>", dash="–")


# --- building ------------------------------------------------------------------------------------
def natural(text: str) -> tuple:
    """Sort "omega0=5" before "omega0=20"."""
    return tuple((0, float(t), "") if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", t) else (1, 0.0, t)
                 for t in re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", text) if t)


def row_label(r: pd.Series) -> str:
    return f"{r['binarizer']} ({r['setting']})" if r["setting"] else r["binarizer"]


def column_labels(sub: pd.DataFrame) -> pd.Series:
    """arch, with its variant where one arch has several in the table."""
    variants = sub.groupby("arch")["variant"].nunique()
    multi = set(variants[variants > 1].index)
    return sub.apply(lambda r: f"{r['arch']} [{r['variant']}]" if r["arch"] in multi
                     else r["arch"], axis=1)


def _budget(sub: pd.DataFrame) -> float | None:
    """The one total epochs of a column's cells, or None when they differ."""
    epochs = set(sub["epochs"].dropna())
    return epochs.pop() if len(epochs) == 1 else None


def build(board: pd.DataFrame) -> list[PaperTable]:
    """One PaperTable per dataset of the leaderboard (with its `best` column)."""
    tables = []
    for dataset, sub in board.groupby("dataset", sort=False):
        sub = sub.assign(_row=sub.apply(row_label, axis=1), _col=column_labels(sub))
        notes = Footnotes()
        columns = list(dict.fromkeys(sub["_col"]))
        column_epochs = {c: _budget(sub[sub["_col"] == c]) for c in columns}
        entries, row_marks = {}, {}
        for _, r in sub.iterrows():
            marks = row_marks.setdefault(r["_row"], [])   # of the row's cells in any column
            marks += [m for m in notes.row_marks(r) if m not in marks]
            uniform = column_epochs[r["_col"]] is not None
            entries[(r["_row"], r["_col"])] = Entry(
                mean=r["top1_mean"], std=r["top1_std"], n=int(r["n_seeds"]),
                published=r["published_top1"], best=bool(r["best"]),
                epochs=None if uniform else r["epochs"],
                marks=[] if uniform else [notes.budget()],
                caveat=notes.caveat(r["published_note"]) if pd.notna(r["published_top1"])
                else "")
        tables.append(PaperTable(dataset, sorted(dict.fromkeys(sub["_row"]), key=natural),
                                 row_marks, columns, column_epochs, entries, notes,
                                 _seeds_text(sub), sub["published_top1"].notna().any(),
                                 sub["n_seeds"].max() < 2))
    return tables


def _seeds_text(sub: pd.DataFrame) -> str:
    n = sorted(set(sub.loc[sub["n_seeds"] > 0, "n_seeds"]))
    if not n:
        return "no finished runs yet"
    return f"{n[0]} seed(s) per cell" if len(n) == 1 else f"{n[0]}–{n[-1]} seeds per cell"


# --- rendering -----------------------------------------------------------------------------------
def number(x: float | None, style: Style = MARKDOWN, digits: int = 2) -> str:
    if x is None or pd.isna(x):
        return style.dash
    return f"{x:.{digits}f}"


def cell_text(e: Entry, style: Style, show_published: bool = True) -> str:
    """"ours ± sd (published)" with bold and footnote marks; without the parentheses in a
    table where nothing is published."""
    ours = number(e.mean, style) + (f"{style.pm}{number(e.std, style)}" if e.n > 1 else "")
    if e.best:
        ours = style.bold(ours)
    if e.epochs is not None and not math.isnan(e.epochs):
        ours += f" [{int(e.epochs)} ep]"
    ours += "".join(style.sup(m) for m in e.marks)
    if not show_published:
        return ours
    published = number(e.published, style) + (style.sup(e.caveat) if e.caveat else "")
    return f"{ours} ({published})"


def frame(table: PaperTable, style: Style) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(texts, best flags): the table as strings of `style`, rows × columns."""
    index = [style.escape(r) + "".join(" " + style.sup(m) for m in table.row_marks[r])
             for r in table.rows]
    columns = [style.escape(c) + (f" ({int(e)} epochs)" if e is not None else "")
               for c, e in table.column_epochs.items()]
    texts = pd.DataFrame("", index=index, columns=columns)
    best = pd.DataFrame(False, index=index, columns=columns)
    for i, row in enumerate(table.rows):
        for j, col in enumerate(table.columns):
            entry = table.entries.get((row, col))
            if entry is not None:
                texts.iat[i, j] = cell_text(entry, style, table.has_published)
                best.iat[i, j] = entry.best
    return texts, best


def legend(table: PaperTable) -> str:
    """What the cells mean (plain text; every format escapes it)."""
    published = ("in parentheses the published top-1 (sources in leaderboard.csv and "
                 "results/reference/); " if table.has_published else "")
    return (f"Final-epoch top-1 (%), mean ± sample std over seeds; {table.seeds}; "
            f"{published}bold: best of the column, ahead of the runner-up by more "
            "than the noise (Welch's t-test, 5 %; tied leaders are bold together, a column "
            "where no row is ahead has none); – : no result; (N epochs): the total budget of "
            "every cell of the column, over all stages."
            + (" With one seed per cell no row can be shown ahead: run two seeds or more "
               "(seeds = 3 in the grid file) to mark a best." if table.one_seed else ""))


def markdown_table(texts: pd.DataFrame, corner: str = "binarizer") -> list[str]:
    lines = [f"| {corner} | " + " | ".join(texts.columns) + " |",
             "|---|" + "---|" * len(texts.columns)]
    lines += [f"| {label} | " + " | ".join(row) + " |" for label, row in
              zip(texts.index, texts.itertuples(index=False))]
    return lines


def note_lines(table: PaperTable, style: Style) -> list[str]:
    return [f"{style.sup(s)} {style.escape(t)}" for s, t in table.notes.items.items()]


def details(board: pd.DataFrame, style: Style) -> pd.DataFrame:
    """Per row of one dataset's leaderboard: the statistics and the budget, as strings."""
    hours = board["gpu_hours"].where(board["gpu_hours"].notna(), board["cpu_hours"])
    device = board["gpu_hours"].notna().map({True: "GPU", False: "CPU"})
    return _escaped_header(pd.DataFrame({
        "arch": board["arch"].map(style.escape),
        "binarizer": board.apply(row_label, axis=1).map(style.escape),
        "n": board["n_seeds"].astype(str),
        "top-1 mean": board["top1_mean"].map(lambda x: number(x, style)),
        "sd": board["top1_std"].map(lambda x: number(x, style)),
        "95% CI ±": board["top1_ci95"].map(lambda x: number(x, style)),
        "epochs": board["epochs"].map(lambda x: number(x, style, 0)),
        "per stage": board["stage_epochs"].fillna("").map(style.escape),
        "steps": board["steps"].map(lambda x: number(x, style, 0)),
        "hours": [number(h, style, 3) + (f" {d}" if pd.notna(h) else "")
                  for h, d in zip(hours, device)],
    }), style)


def ranks(rank: pd.DataFrame, style: Style) -> pd.DataFrame:
    """One dataset's ranking (bnnbench.report.stats.ranking) as strings."""
    return _escaped_header(pd.DataFrame({
        "binarizer": rank.apply(row_label, axis=1).map(style.escape),
        "archs": rank["archs"].astype(str),
        "mean rank": rank["mean_rank"].map(lambda x: number(x, style)),
        "per-seed range": [style.dash if pd.isna(lo) else
                           f"{number(lo, style)}{style.dash}{number(hi, style)}"
                           for lo, hi in zip(rank["rank_min"], rank["rank_max"])],
        "per-seed sd": rank["rank_sd"].map(lambda x: number(x, style)),
        "seeds": rank["seeds"],
    }), style)


def _escaped_header(texts: pd.DataFrame, style: Style) -> pd.DataFrame:
    return texts.rename(columns=style.escape)


RANK_LEGEND = ("Rank of each binarizer within each arch by mean top-1 (1 = best, ties share "
               "the average), averaged over archs; per seed: the same with each seed's top-1 "
               "alone, its range and sample std over seeds say how stable the order is.")
