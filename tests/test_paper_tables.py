"""The paper's numbers are typed once, in ``seaice_utils/paper.py``: every number of the paper that
the notebooks' markdown and README.md retype agrees with it, and ``PAPER_SPEEDUPS`` is derived
from Tables I-III.

The markdown tables are parsed cell by cell (every row and every column is checked, so a row
added to a table without its number in ``paper.py`` fails), the prose figures by pattern.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from seaice_utils import paper

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


def markdown(path: Path) -> str:
    """A notebook's markdown cells (joined), or a markdown file's text."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table of ``text``: rows of stripped cells, the separator row left out."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def table_headed(text: str, first: str) -> list[list[str]]:
    found = [t for t in markdown_tables(text) if t[0][0] == first]
    assert len(found) == 1, f"one table whose header starts with {first!r} (found {len(found)})"
    return found[0]


def number(cell: str) -> float:
    assert NUMBER.match(cell), f"not a plain number: {cell!r}"
    return float(cell)


def test_markdown_tables_are_parsed():
    text = "a\n\n| x | 1 | 2 |\n| --- | --- | :-: |\n| y | 3 | 4 |\n\nb\n| z |\n"
    assert markdown_tables(text) == [[["x", "1", "2"], ["y", "3", "4"]], [["z"]]]


def test_notebook_04_table_iii_is_the_papers():
    t = table_headed(markdown(ROOT / "notebooks" / "04_horovod_training.ipynb"), "GPUs")
    keys = {"total s": "total_s", "s / epoch": "s_per_epoch", "images / s": "images_per_s",
            "speedup": "speedup"}
    assert [number(c) for c in t[0][1:]] == [r["workers"] for r in paper.PAPER_TABLE3]
    assert {row[0] for row in t[1:]} == set(keys)
    for row in t[1:]:
        assert [number(c) for c in row[1:]] == [r[keys[row[0]]] for r in paper.PAPER_TABLE3], row


def test_notebook_05_tables_iv_and_v_are_the_papers():
    text = markdown(ROOT / "notebooks" / "05_evaluation_figures.ipynb")
    t = table_headed(text, "pixel accuracy %")
    models = t[0][1:]
    assert models == ["U-Net-Man", "U-Net-Auto"]
    rows = {"original images (Table IV)": [("original",)],
            "filtered images (Table IV)": [("filtered",)],
            "> 10 % cloud, original / filtered (Table V)": [("original", "above"),
                                                            ("filtered", "above")],
            "< 10 % cloud, original / filtered (Table V)": [("original", "below"),
                                                            ("filtered", "below")]}
    assert [row[0] for row in t[1:]] == list(rows)
    for row in t[1:]:
        for model, cell in zip(models, row[1:]):
            values = [number(v.strip()) for v in cell.split("/")]
            keys = rows[row[0]]
            assert len(values) == len(keys), row
            for key, v in zip(keys, values):
                table = paper.PAPER_TABLE4 if len(key) == 1 else paper.PAPER_TABLE5
                assert v == table[(model, *key)], (row[0], model, key)
    ssim = re.search(r"SSIM (\S+) % \(original\), (\S+) % \(filtered\)", text)
    assert ssim, "notebook 05 states the paper's auto-label SSIM"
    assert (number(ssim[1]), number(ssim[2])) == (paper.PAPER_AUTOLABEL_SSIM["original"],
                                                  paper.PAPER_AUTOLABEL_SSIM["filtered"])


def test_notebook_03_prose_is_the_papers():
    text = markdown(ROOT / "notebooks" / "03_autolabel_benchmarks.ipynb")
    m = re.search(r"reports (\S+) s for\s+(\d+) tiles sequentially and a (\S+)x speedup with "
                  r"(\d+) processes", text)
    assert m, "notebook 03 states the paper's Table I"
    t1 = paper.PAPER_TABLE1
    assert number(m[1]) == t1[1]
    assert number(m[3]) == round(t1[1] / t1[int(m[4])], 1)
    m = re.search(r"load and reduce phases speed up (\d+)x and (\d+)x from 1x1 to (\d)x(\d)", text)
    assert m, "notebook 03 states the paper's Table II speedups"
    first, last = paper.PAPER_TABLE2[(1, 1)], paper.PAPER_TABLE2[(int(m[3]), int(m[4]))]
    assert (number(m[1]), number(m[2])) == (round(first[0] / last[0]), round(first[2] / last[2]))


def test_readme_cites_the_papers_numbers():
    text = (ROOT / "README.md").read_text()
    # any pipe table of README whose header names the paper holds only the paper's numbers
    published = ({v for v in paper.PAPER_TABLE1.values()}
                 | {v for t in paper.PAPER_TABLE2.values() for v in t}
                 | {v for r in paper.PAPER_TABLE3 for v in r.values()}
                 | set(paper.PAPER_TABLE4.values()) | set(paper.PAPER_TABLE5.values())
                 | set(paper.PAPER_AUTOLABEL_SSIM.values()))
    for t in markdown_tables(text):
        if any("paper" in c.lower() for c in t[0]):
            for row in t[1:]:
                for cell in row[1:]:
                    for v in re.findall(r"\d+\.\d+", cell):
                        assert float(v) in published, (t[0], row)
    cited = re.findall(r"paper's (\d+\.\d+) % for (U-Net-\w+)", text)
    assert cited, "README cites the paper's accuracy"
    for v, model in cited:
        assert float(v) in {a for (m, _), a in paper.PAPER_TABLE4.items() if m == model}
    for v in re.findall(r"(\d+\.\d+) % SSIM", text):
        assert float(v) in paper.PAPER_AUTOLABEL_SSIM.values()


def test_speedups_are_derived_from_the_tables():
    sp = paper.PAPER_SPEEDUPS
    t1 = paper.PAPER_TABLE1
    assert sp["Table I"]["points"] == [(p, t1[1] / s) for p, s in t1.items()]
    t2 = paper.PAPER_TABLE2
    assert sp["Table II"]["points"] == [(e * c, t2[(1, 1)][2] / t[2]) for (e, c), t in t2.items()]
    assert sp["Table III"]["points"] == [(r["workers"], r["speedup"]) for r in paper.PAPER_TABLE3]
    # the published speedup column of Table III is its time ratio, to the printed digits
    t3 = paper.PAPER_TABLE3
    for r in t3:
        assert r["speedup"] == pytest.approx(t3[0]["total_s"] / r["total_s"], abs=0.006)
