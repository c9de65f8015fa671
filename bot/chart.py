"""The digest's chart: win rate inside vs outside the ICP over the trend weeks, and outcomes by tier.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state, no GUI), so it is
safe in the bot's worker threads. The PNG is always WIDTH × HEIGHT pixels, whatever the data:
Slack previews it at about that size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.render import clip, short_day
from insights.digest import SMALL_SAMPLE, Digest, WeekStats

DPI = 100
WIDTH, HEIGHT = 1200, 600  # pixels
# Okabe–Ito: distinguishable with the common kinds of colour blindness.
INSIDE_COLOUR, OUTSIDE_COLOUR = "#0072B2", "#D55E00"
KINDS = (
    ("win", "Wins", "#009E73"),
    ("loss", "Losses", "#D55E00"),
    ("renewal_loss", "Renewal losses", "#E69F00"),
    ("implementation_failure", "Implementation failures", "#CC79A7"),
    ("customer_win", "Customer wins", "#56B4E9"),
)
_MUTED = "#6b7280"
TITLE_PAD = 44  # points between a panel and its title: room for the legend, the same in both panels


def digest_chart_png(d: Digest) -> bytes:
    """The chart as PNG bytes, WIDTH × HEIGHT pixels. An empty panel says so instead of drawing axes."""
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 2, width_ratios=(3, 2))
    _draw_trend(fig.add_subplot(grid[0, 0]), d)
    _draw_tiers(fig.add_subplot(grid[0, 1]), d)
    fig.suptitle(
        _plain(
            f"ICP digest · week of {short_day(d.period.start)}, {d.period.start.year} · "
            f"ICP {clip(d.icp_version, 40)}"
        ),
        fontsize=14,
        fontweight="bold",
    )
    out = io.BytesIO()
    # No "Software" chunk: the same digest gives the same bytes across matplotlib versions' labels.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _plain(text: str) -> str:
    """Text for matplotlib: a "$" from the data must not start mathtext."""
    return text.replace("$", r"\$")


def _ratio(wins: int, losses: int) -> float:
    return wins / (wins + losses) if wins + losses else math.nan


def _draw_trend(ax: Axes, d: Digest) -> None:
    weeks: Sequence[WeekStats] = d.weekly
    inside_tiers = clip(", ".join(clip(t, 10) for t in d.tiers[:2]), 24)
    title = _plain(f"Win rate inside the ICP (tiers {inside_tiers}) vs outside")
    ax.set_title(title, fontsize=12, loc="left", pad=TITLE_PAD)
    if not any(w.wins + w.losses for w in weeks):
        _empty(ax, f"No closed deals in these {len(weeks) or 13} weeks")
        return
    xs = list(range(len(weeks)))
    series = (
        ("Inside the ICP", INSIDE_COLOUR, [(w.icp_wins, w.icp_losses) for w in weeks]),
        ("Outside the ICP", OUTSIDE_COLOUR, [(w.other_wins, w.other_losses) for w in weeks]),
    )
    for name, colour, counts in series:
        rates = [_ratio(wins, losses) for wins, losses in counts]  # NaN leaves a gap in the line
        ax.plot(xs, rates, color=colour, linewidth=2.2, label=name)
        for x, rate, (wins, losses) in zip(xs, rates, counts, strict=True):
            if math.isnan(rate):
                continue
            small = wins + losses < SMALL_SAMPLE
            ax.plot(
                [x],
                [rate],
                marker="o",
                markersize=7,
                color=colour,
                markerfacecolor="white" if small else colour,
                markeredgewidth=1.8,
                linestyle="none",
            )
    ax.axvspan(len(weeks) - 1.5, len(weeks) - 0.5, color="#e5e7eb", zorder=0)
    ax.set_xlim(-0.5, len(weeks) - 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("Win rate: wins / (wins + losses)")
    ax.set_xlabel("Week starting (shaded: this digest's week)")
    ax.set_xticks(xs, [short_day(w.week_start) for w in weeks], rotation=45, ha="right", fontsize=9)
    ax.grid(axis="y", color="#e5e7eb")
    ax.spines[["top", "right"]].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(
        Line2D([], [], marker="o", linestyle="none", color=_MUTED, markerfacecolor="white", markersize=7)
    )
    labels.append(f"fewer than {SMALL_SAMPLE} closed deals")
    ax.legend(
        handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=9, frameon=False, ncols=3
    )


def _draw_tiers(ax: Axes, d: Digest) -> None:
    ax.set_title(
        f"Outcomes by tier, week of {short_day(d.period.start)}", fontsize=12, loc="left", pad=TITLE_PAD
    )
    tiers = d.by_tier
    counts = {
        kind: [
            {
                "win": t.wins,
                "loss": t.losses,
                "renewal_loss": t.renewal_losses,
                "implementation_failure": t.implementation_failures,
                "customer_win": t.customer_wins,
            }[kind]
            for t in tiers
        ]
        for kind, _, _ in KINDS
    }
    if not any(sum(values) for values in counts.values()):
        _empty(ax, "No outcomes this week")
        return
    width = 0.8 / len(KINDS)
    crowded = len(tiers) > 6  # counts on the bars and full labels only while they stay legible
    for i, (kind, name, colour) in enumerate(KINDS):
        xs = [x + (i - (len(KINDS) - 1) / 2) * width for x in range(len(tiers))]
        bars = ax.bar(xs, counts[kind], width=width, color=colour, label=name)
        if not crowded:
            ax.bar_label(bars, labels=[str(c) if c else "" for c in counts[kind]], fontsize=8, padding=1)
    inside = set(d.tiers[:2])
    names = []
    for t in tiers:
        name = (
            "No tier" if t.tier == "unknown" else clip(t.tier, 8) if crowded else f"Tier {clip(t.tier, 10)}"
        )
        names.append(_plain(name) + ((" (ICP)" if crowded else "\n(ICP)") if t.tier in inside else ""))
    if crowded:
        ax.set_xticks(range(len(tiers)), names, fontsize=8, rotation=45, ha="right")
    else:
        ax.set_xticks(range(len(tiers)), names, fontsize=10)
    ax.set_ylabel("Outcomes this week")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.1)
    ax.grid(axis="y", color="#e5e7eb")
    ax.spines[["top", "right"]].set_visible(False)
    # Above the bars, under the title: never on top of the data.
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, fontsize=9, frameon=False)


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color=_MUTED, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
