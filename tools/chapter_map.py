"""Draw the preface's chapter map: every chapter, by part, with arrows from what it builds on.

    python tools/chapter_map.py     # writes book/figures/chapter_map.svg

The chapters and parts are those of ``tools/migration_tables.py``; the arrows are ``DEPENDS``
below after a transitive reduction (an arrow a -> c is left out when a -> b -> c is drawn).
All sixteen chapters are drawn, written or not, so the figure does not change when a chapter
lands; re-run it when the plan changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from migration_tables import CHAPTERS, ROOT  # noqa: E402

OUT = ROOT / "book" / "figures" / "chapter_map.svg"
SHORT = {1: "Specs and\nenvironments", 2: "Networks", 3: "Safe modules\nand actors",
         4: "Distributions", 5: "Probabilistic\nactors", 6: "Exploration", 7: "Q-value\nactors",
         8: "Distributional\nDQN", 9: "Value operators\n(actor-critic)", 10: "Recurrent\nmodules",
         11: "Planners", 12: "Multi-agent\nnetworks", 13: "World\nmodels", 14: "Sequence\nmodels",
         15: "Capstone", 16: "Performance"}
# chapter -> the chapters it builds on (the "What you need" paragraph of each chapter).
DEPENDS = {2: [1], 3: [1, 2], 4: [1, 2], 5: [1, 3, 4], 6: [1, 3, 5], 7: [1, 2, 3, 6], 8: [7],
           9: [2, 3, 5], 10: [1, 3], 11: [1, 3], 12: [2, 7], 13: [2, 5, 10], 14: [3, 5, 9],
           15: [1, 2, 6, 7], 16: list(range(1, 16))}
COLORS = ["#dbe9f6", "#e2f0d9", "#fde9d9", "#ead1f5", "#fff2cc", "#d9f2f2", "#f2dcdb",
          "#e7e6e6", "#f8f8f8"]


def reduced(depends: dict[int, list[int]]) -> dict[int, list[int]]:
    """Drop a -> c when c is reachable from a through another prerequisite."""
    def reach(n, seen=None):
        seen = set() if seen is None else seen
        for p in depends.get(n, []):
            if p not in seen:
                seen.add(p)
                reach(p, seen)
        return seen

    return {n: [p for p in ps if not any(p in reach(q) for q in ps if q != p)]
            for n, ps in depends.items()}


def main() -> None:
    parts = list(dict.fromkeys(part for _, part, _, _ in CHAPTERS))
    position, dx, dy, w, h = {}, 2.3, 1.25, 1.95, 0.8
    for number, part, _, _ in CHAPTERS:
        row = sum(1 for n, p, _, _ in CHAPTERS if p == part and n < number)
        position[number] = (parts.index(part) * dx, -row * dy)
    fig, ax = plt.subplots(figsize=(15, 4.2))
    for column, part in enumerate(parts):
        label = part.replace(" and ", " and\n").replace("it together", "it\ntogether")
        ax.text(column * dx, 0.85, label, ha="center", va="center", fontsize=9, weight="bold")
    far = {}  # prerequisites more than one column away: named in the box, not drawn
    for number, ps in reduced(DEPENDS).items():
        for p in ps if number != 16 else [15]:
            (x0, y0), (x1, y1) = position[p], position[number]
            if x1 - x0 > dx * 1.01:
                far.setdefault(number, []).append(p)
                continue
            if x0 == x1:  # down the column
                start, end, rad = (x0, y0 - h / 2), (x1, y1 + h / 2), 0.0
            else:
                start, end, rad = (x0 + w / 2, y0), (x1 - w / 2, y1), -0.12 if y0 != y1 else 0.0
            ax.annotate("", end, start, zorder=1, arrowprops=dict(
                arrowstyle="->", color="#666666", lw=0.9, shrinkA=0, shrinkB=1,
                connectionstyle=f"arc3,rad={rad}"))
    for number, part, _, _ in CHAPTERS:
        x, y = position[number]
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                    fc=COLORS[parts.index(part)], ec="#4a4a4a", lw=0.8,
                                    zorder=2))
        needs = far.get(number)
        ax.text(x, y + (0.1 if needs else 0), f"{number}. {SHORT[number]}", ha="center",
                va="center", fontsize=8.5, zorder=3)
        if needs:
            ax.text(x, y - 0.28, "after " + ", ".join(map(str, sorted(needs))), ha="center",
                    va="center", fontsize=7.5, style="italic", zorder=3)
    ax.text(position[16][0], position[16][1] - 0.6, "times every chapter", ha="center",
            fontsize=8, style="italic")
    ax.set(xlim=(-1.0, dx * (len(parts) - 1) + 1.0), ylim=(-2 * dy - 0.5, 1.15))
    ax.axis("off")
    plt.rcParams["svg.hashsalt"] = "rlmods"
    fig.savefig(OUT, bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
