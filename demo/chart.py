"""Busy hours per person per week, from dbt's busy_hours_weekly: a PNG and a terminal view."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import duckdb

BARS = " ▁▂▃▄▅▆▇█"


def weekly(warehouse: Path, weeks: int = 8) -> tuple[list[dt.date], dict[str, list[float]]]:
    """The next ``weeks`` ISO weeks from this one: busy hours per account name."""
    today = dt.date.today()
    first = today - dt.timedelta(days=today.weekday())
    days = [first + dt.timedelta(weeks=n) for n in range(weeks)]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select coalesce(account_name, account_id), week_start, busy_hours "
            "from analytics.busy_hours_weekly where week_start >= ? and week_start <= ?",
            [days[0], days[-1]],
        ).fetchall()
    series: dict[str, list[float]] = {}
    for name, week, hours in rows:
        series.setdefault(name, [0.0] * weeks)[days.index(week)] = float(hours)
    return days, dict(sorted(series.items()))


def columns(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - columns(text))


def weeks_label(days: list[dt.date]) -> str:
    """What the chart covers: ``8 ISO weeks from Mon 30 Nov 2026 to Mon 18 Jan 2027``."""
    return f"{len(days)} ISO weeks starting Monday {days[0]:%d %b %Y} to {days[-1]:%d %b %Y}"


def terminal(days: list[dt.date], series: dict[str, list[float]]) -> str:
    top = max((h for values in series.values() for h in values), default=0) or 1
    width = max((columns(name) for name in series), default=4)
    lines = [
        f"  busy hours, {weeks_label(days)}:",
        pad("", width) + "  " + " ".join(f"{d:%d %b}".ljust(7) for d in days),
    ]
    for name, values in series.items():
        cells = [f"{BARS[round(h / top * (len(BARS) - 1))] * 2} {h:4.1f}" for h in values]
        lines.append(pad(name, width) + "  " + " ".join(cells))
    return "\n".join(lines)


# The glyphs of the simulator's CJK names, cut from WenQuanYi Micro Hei (Apache-2.0:
# demo/fonts/LICENSE), so the chart draws every name on any machine.
CJK_FONT = Path(__file__).resolve().parent / "fonts" / "wqy-microhei-demo-subset.ttf"


def with_cjk_fallback() -> list[str]:
    """Matplotlib's font families: its default first, then the shipped CJK subset, which
    matplotlib falls back to glyph by glyph."""
    import matplotlib
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(CJK_FONT))
    cjk = font_manager.FontProperties(fname=str(CJK_FONT)).get_name()
    default = list(matplotlib.rcParams["font.family"])
    family = [*[f for f in default if f != cjk], cjk]
    matplotlib.rcParams["font.family"] = family
    return family


def drawable(name: str, family: list[str]) -> bool:
    """Whether some font of ``family`` has each character of ``name``."""
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    fonts = [FT2Font(findfont(FontProperties(family=[f]))) for f in family]
    return all(any(font.get_char_index(ord(ch)) for font in fonts) for ch in name if ch != " ")


def png(days: list[dt.date], series: dict[str, list[float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = with_cjk_fallback()

    def label(name: str) -> str:
        """The name, or a stand-in when no font here has its glyphs (not the demo's)."""
        if drawable(name, family):
            return name
        return f"account {list(series).index(name) + 1} (no font here draws its name)"

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    count = max(len(series), 1)
    width = 0.8 / count
    for index, (name, values) in enumerate(series.items()):
        offsets = [n + (index - (count - 1) / 2) * width for n in range(len(days))]
        ax.bar(offsets, values, width=width, label=label(name))
    ax.set_xticks(range(len(days)), [f"{d:%d %b}" for d in days])
    years = sorted({f"{d:%Y}" for d in days})
    ax.set_xlabel(f"ISO week, starting Monday ({' to '.join(years)})")
    ax.set_ylabel("busy hours (overlaps counted once)")
    ax.set_title("Busy hours per person per ISO week (their own time zone)")
    ax.legend(frameon=False, fontsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
