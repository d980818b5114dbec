"""The formats (Markdown, LaTeX, HTML) of one leaderboard: every row, best, budget mark and
footnote in each; the LaTeX compiles where a TeX engine is installed; the HTML parses."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from runstores import write_cell

from bnnbench.report.leaderboard import write_report
from bnnbench.report.tables import latex_escape

TWO = ("sine", "binary")
BIREAL_NOTE = "Caffe code (sign(0) = +1) with real-valued pre-training"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """cifar10 resnet20: biper trains 8 epochs, recu and xnor 4 (budgets differ); vgg_small:
    recu clearly best, one budget; imagenet: bireal, whose published number used real-valued
    pre-training (a caveat), started from its best test epoch (†)."""
    root = tmp_path_factory.mktemp("render")
    store = root / "runs"
    for seed, top1 in enumerate([86.0, 87.0, 88.5]):
        write_cell(store, seed=seed, top1=top1, epochs=8, stage_names=TWO)
    for seed, top1 in enumerate([87.0, 88.0]):
        write_cell(store, binarizer={"name": "recu"}, seed=seed, top1=top1)
    write_cell(store, binarizer={"name": "xnor"}, top1=80.0)
    for seed, (a, b) in enumerate([(92.0, 88.0), (92.1, 88.4), (91.9, 88.2)]):
        write_cell(store, arch="vgg_small", binarizer={"name": "recu"}, seed=seed, top1=a)
        write_cell(store, arch="vgg_small", binarizer={"name": "irnet"}, seed=seed, top1=b)
    write_cell(store, dataset="imagenet", arch="resnet18", binarizer={"name": "bireal"},
               top1=50.0, stage_names=TWO, init_from="best")
    result = write_report([store], root / "out", counts=False)
    return result, root / "out"


def test_markdown_marks_budgets_best_and_caveats(report):
    result, out = report
    md = (out / "leaderboard.md").read_text()
    assert md == result["markdown"]
    header = next(line for line in md.splitlines() if line.startswith("| binarizer | resnet20"))
    assert header == "| binarizer | resnet20 | vgg_small (4 epochs) |"   # one budget: in header
    biper = next(line for line in md.splitlines() if line.startswith("| biper |"))
    assert "87.17 ± 1.26 [8 ep]‡ (86.98¹)" in biper
    assert "87.50 ± 0.71 [4 ep]‡ (87.50)" in md
    assert "‡ the cells of this column trained different total epochs" in md
    assert "¹ omega0 not published (code default 30)" in md
    assert "**92.00 ± 0.10** (92.20)" in md and "**88" not in md
    assert "| bireal † |" in md and f"¹ {BIREAL_NOTE}" in md and "† a later stage" in md
    assert "| resnet20 | biper | 3 | 87.17 | 1.26 |" in md   # statistics per row
    assert "| 8 | 4+4 |" in md


def test_latex_holds_every_row_and_compiles(report, tmp_path):
    result, out = report
    tex = (out / "leaderboard.tex").read_text()
    board = result["leaderboard"]
    for r in board.itertuples():
        assert f"\n{latex_escape(r.binarizer)}" in tex, r.binarizer
    assert tex.count(r"\begin{table}") == 2 * 3   # per dataset: table, statistics, ranking
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\textbf{92.00 $\pm$ 0.10}" in tex and r"$^{\ddagger}$" in tex
    assert r"bireal $^{\dagger}$" in tex and latex_escape(BIREAL_NOTE) in tex
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("no TeX engine installed: the LaTeX was checked, not compiled")
    (tmp_path / "leaderboard.tex").write_text(tex)
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
        "\\usepackage[margin=1cm,landscape]{geometry}"
        "\\begin{document}\\input{leaderboard.tex}\\end{document}\n")
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000


class _Page(HTMLParser):
    """What a reader sees: tables (rows of cell texts), paragraphs, images."""

    def __init__(self):
        super().__init__()
        self.tables, self.paragraphs, self.images, self._text = [], [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "p"):
            self._text = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._text).strip())
            self._text = None
        elif tag == "p":
            self.paragraphs.append("".join(self._text).strip())
            self._text = None


def test_html_page_holds_every_table_footnote_and_figure(report):
    result, out = report
    page = _Page()
    page.feed((out / "leaderboard.html").read_text())
    board = result["leaderboard"]
    assert len(page.tables) == 3 * board["dataset"].nunique()
    paper = page.tables[0]
    assert [row[0] for row in paper[1:]] == ["biper", "irnet", "recu", "xnor"]
    assert any(cell.startswith("87.17 ± 1.26 [8 ep]‡ (86.98") for row in paper for cell in row)
    stats_rows = page.tables[1][1:]
    assert len(stats_rows) == (board["dataset"] == "cifar10").sum()
    assert any("1 omega0 not published" in p for p in page.paragraphs)
    assert any(p.startswith("‡ the cells of this column") for p in page.paragraphs)
    assert any(BIREAL_NOTE in p for p in page.paragraphs)
    assert any(p.startswith("† a later stage") for p in page.paragraphs)
    pngs = sorted(p for p in result["files"] if p.suffix == ".png")
    assert len(page.images) == len(pngs) > 0
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in page.images}
    assert embedded == {p.read_bytes() for p in pngs}   # the figures themselves, no links
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    best = re.findall(r'<td [^>]*class="[^"]*\bbest\b[^>]*>(.*?)</td>',
                      (out / "leaderboard.html").read_text())
    assert best == ["<strong>92.00 ± 0.10</strong> (92.20)"]


def test_report_files_are_written(report):
    _, out = report
    for name in ("leaderboard.csv", "ranking.csv", "leaderboard.md", "leaderboard.tex",
                 "leaderboard.html"):
        assert (out / name).stat().st_size > 0, name
