"""leaderboard.html: the whole report as one self-contained static page to share.

The tables of bnnbench.report.tables rendered by pandas Styler, their legends and footnotes,
and the report's PNG figures embedded as base64 data URIs: no server, no file beside it, opens
offline in any browser.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from .tables import HTML, RANK_LEGEND, build, details, frame, legend, note_lines, ranks

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.92em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f4f4f4; }
th.row_heading { text-align: left; }
table.paper td { text-align: center; }
td.best { background: #e3f1e3; }
.notes { font-size: 0.85em; color: #444; margin: 0.3em 0 1.2em; max-width: 60em; }
.notes p { margin: 0.15em 0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _styled(texts: pd.DataFrame, best: pd.DataFrame | None = None, text_columns=()) -> str:
    """A Styler table of pre-escaped strings: with `best`, the paper's table (row labels, best
    cells of class "best"); else a plain table whose `text_columns` are left-aligned."""
    styler = texts.style
    if best is not None:
        return styler.set_table_attributes('class="paper"').set_td_classes(
            best.replace({True: "best", False: ""})).to_html()
    return styler.hide(axis="index").set_properties(
        subset=list(text_columns), **{"text-align": "left"}).to_html()


def _notes(lines: list[str]) -> str:
    """Paragraphs of already escaped text under a table."""
    return '<div class="notes">' + "".join(f"<p>{line}</p>" for line in lines) + "</div>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.stem)
    return (f'<figure id="fig-{name}"><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{name}</figcaption></figure>")


def _belongs(path: Path, dataset: str) -> bool:
    """Whether a figure file is one of `dataset`'s (top1_<ds>, curves_<ds>, ..._<ds>_...)."""
    return f"_{dataset}_" in f"_{path.stem}_"


def to_html(board: pd.DataFrame, rank: pd.DataFrame, figures: list[Path],
            left_out: str = "") -> str:
    """The page: per dataset the paper's table with legend and footnotes, statistics and
    budget, ranking, and that dataset's figures; then the figures of no one dataset."""
    pngs = [p for p in figures if p.suffix == ".png"]
    body = ["<h1>bnnbench leaderboard</h1>"]
    for table in build(board):
        texts, best = frame(table, HTML)
        name = html.escape(table.dataset)
        body += [f'<h2 id="{name}">{name}</h2>', _styled(texts, best),
                 _notes([html.escape(legend(table)), *note_lines(table, HTML)])]
        rows = board[board["dataset"] == table.dataset]
        body += [f"<h3>{name}: statistics and budget per row</h3>",
                 _styled(details(rows, HTML), text_columns=("arch", "binarizer", "hours"))]
        sub = rank[rank["dataset"] == table.dataset]
        if len(sub):
            body += [f"<h3>{name}: ranking</h3>",
                     _styled(ranks(sub, HTML), text_columns=("binarizer",)),
                     _notes([html.escape(RANK_LEGEND)])]
        body += [_figure(p) for p in pngs if _belongs(p, table.dataset)]
    others = [p for p in pngs if not any(_belongs(p, d) for d in board["dataset"].unique())]
    if others:
        body += ["<h2>figures</h2>", *(_figure(p) for p in others)]
    if left_out.strip():
        body.append(_notes([html.escape(line) for line in left_out.strip().splitlines()]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>bnnbench leaderboard</title><style>" + CSS + "</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
