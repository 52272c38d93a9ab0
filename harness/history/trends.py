"""The history judged: per image, each timing's trend and the newest run against the runs before it.

Pure: runs in, a ``History`` out (no files, no clock), so it is tested on hand-made series. The
timings judged are each install cell's time and the Tier 1 cell's time; each is judged in every
run against the runs before it (``outliers.judge_series``), so a chart can mark past outliers
too, but only the newest run decides the exit status. Shown beside them, not judged: the tiers'
statuses and the verdicts (the run's checks judged those), and how many of the last runs passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.history.outliers import DEFAULT_RULE, Judgement, Rule, judge_series
from harness.history.series import Run

TIER1_TIME = "Tier 1 cell"
DEFAULT_WINDOW = 12   # a year of monthly runs


@dataclass
class Trend:
    """One timing of one image over the window's runs, oldest first."""

    name: str                             # "cell 1 [install]" or TIER1_TIME
    kind: str                             # "install" | "tier1"
    values: list[float | None]            # None: not measured in that run (image or cell absent)
    judgements: list[Judgement | None]

    @property
    def newest(self) -> Judgement | None:
        return self.judgements[-1] if self.judgements else None


@dataclass
class ImageHistory:
    image: str
    verdicts: list[str | None]            # per run in the window; None: the image was not in that run
    tiers: dict[str, list[str | None]]    # tier -> status per run
    trends: list[Trend]
    install_totals: list[float | None]    # all install cells together, per run (for the summary chart)

    @property
    def in_newest(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1] is not None

    @property
    def passed(self) -> int:
        return sum(1 for v in self.verdicts if v == "pass")

    @property
    def counted(self) -> int:
        return sum(1 for v in self.verdicts if v is not None)

    def outliers(self) -> list[Trend]:
        """The timings the newest run is an outlier in."""
        return [t for t in self.trends if t.newest is not None and t.newest.outlier and t.values[-1] is not None]


@dataclass
class History:
    runs: list[Run]                       # the window, oldest first
    images: list[ImageHistory]
    rule: Rule
    window: int
    problems: list[str] = field(default_factory=list)   # runs or reports that could not be read
    notes: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    def outliers(self) -> list[tuple[str, Trend]]:
        return [(image.image, trend) for image in self.images for trend in image.outliers()]

    @property
    def exit_code(self) -> int:
        """2: something could not be read (or there is no run at all); 1: the newest run is an
        outlier; 0: fine."""
        if self.problems or not self.runs:
            return 2
        return 1 if self.outliers() else 0

    @property
    def verdict(self) -> str:
        return ("pass", "outlier", "error")[self.exit_code]


def build(runs: list[Run], rule: Rule = DEFAULT_RULE, window: int = DEFAULT_WINDOW,
          problems: list[str] | None = None, notes: list[str] | None = None) -> History:
    """The history of ``runs`` (oldest first): every run is judged against up to ``window - 1``
    runs before it; the last ``window`` runs are kept for display."""
    if window < 2:
        raise ValueError(f"the window must hold at least 2 runs, not {window}")
    shown = runs[-window:]
    images = list(dict.fromkeys(name for run in shown for name in run.images))
    histories = [_image_history(name, runs, len(shown), rule, window) for name in images]
    notes = list(notes or [])
    if shown:
        gone = [h.image for h in histories if not h.in_newest]
        if gone:
            notes.append(f"Not in the newest run (not judged): {', '.join(gone)}.")
        if len(runs) == 1:
            notes.append("This is the first run in the history: there is nothing to compare it with yet.")
    return History(shown, histories, rule, window, list(problems or []), notes)


def _image_history(image: str, runs: list[Run], shown: int, rule: Rule, window: int) -> ImageHistory:
    points = [run.images.get(image) for run in runs]
    cells = list(dict.fromkeys(name for p in points[-shown:] if p for name in p.installs))
    trends = [Trend(name, "install", values, judge_series(values, rule, window)[-shown:])
              for name in cells for values in [[p.installs.get(name) if p else None for p in points]]]
    tier1 = [p.tier1_s if p else None for p in points]
    if any(v is not None for v in tier1[-shown:]):
        trends.append(Trend(TIER1_TIME, "tier1", tier1, judge_series(tier1, rule, window)[-shown:]))
    for trend in trends:
        trend.values = trend.values[-shown:]
    tiers = sorted({tier for p in points[-shown:] if p for tier in p.tiers})
    return ImageHistory(
        image=image,
        verdicts=[p.verdict if p else None for p in points[-shown:]],
        tiers={tier: [p.tiers.get(tier) if p else None for p in points[-shown:]] for tier in tiers},
        trends=trends,
        install_totals=[sum(p.installs.values()) if p else None for p in points[-shown:]],
    )
