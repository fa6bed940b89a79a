"""The screening log: how many were screened and with what outcome, without any identifier."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flows import Protocol, verdict_of
from storage.records import Screening

Period = Literal["day", "week", "month", "year"]
STATUSES = (
    "eligible",
    "ineligible",
    "needs_review",
    "pending",
    "in_progress",
    "cancelled",
    "not_completed",
)


def period_of(screening: Screening, period: Period) -> str:
    """The period a screening falls in, by its start (UTC)."""
    at = screening.created_at
    return {
        "day": at.strftime("%Y-%m-%d"),
        "week": at.strftime("%G-W%V"),
        "month": at.strftime("%Y-%m"),
        "year": at.strftime("%Y"),
    }[period]


@dataclass
class ScreeningLog:
    """Counts per (trial, period): by status, and ineligible by failing criterion."""

    by_status: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    by_criterion: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    passes: dict[str, tuple[str, set[str], set[str]]] = field(default_factory=dict)
    """Patients screened against several trials in one pass: by the pass's code, its period,
    the trials screened and those the patient fit (kept while counting, never written)."""

    def add(self, screening: Screening, protocol: Protocol, period: Period) -> None:
        """Count one screening."""
        if screening.pass_code is not None:
            _, trials, fit = self.passes.setdefault(
                screening.pass_code, (period_of(screening, period), set(), set())
            )
            trials.add(screening.protocol_id)
            if screening.status == "eligible":
                fit.add(screening.protocol_id)
        key = (screening.protocol_id, period_of(screening, period))
        counts = self.by_status.setdefault(key, Counter())
        counts["screened"] += 1
        counts[screening.status] += 1
        if screening.status == "ineligible":
            failing = self.by_criterion.setdefault(key, Counter())
            for cv in verdict_of(protocol, screening.state).excluded_by:
                failing[protocol.criteria_by_id[cv.criterion_id].number] += 1

    def status_csv(self) -> str:
        """Counts by status, one row per trial and period."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["trial", "period", "screened", *STATUSES])
        for (trial, period), counts in sorted(self.by_status.items()):
            writer.writerow([trial, period, counts["screened"], *(counts[s] for s in STATUSES)])
        return out.getvalue()

    def criterion_csv(self) -> str:
        """Ineligible screenings by the criterion that excluded them."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["trial", "period", "criterion", "ineligible"])
        for (trial, period), counts in sorted(self.by_criterion.items()):
            for number, count in sorted(counts.items()):
                writer.writerow([trial, period, number, count])
        return out.getvalue()

    def passes_csv(self) -> str:
        """Patients screened against several trials in one pass, by the trials they fit."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for period, trials, fit in self.passes.values():
            counts[period, "+".join(sorted(trials)), "+".join(sorted(fit)) or "none"] += 1
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["period", "trials screened", "eligible for", "patients"])
        for row, count in sorted(counts.items()):
            writer.writerow([*row, count])
        return out.getvalue()

    def chart(self, path: Path) -> None:
        """A bar chart (PNG) of outcomes per period, one panel per trial."""
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt

        trials = sorted({trial for trial, _ in self.by_status}) or ["(none)"]
        fig, axes = plt.subplots(len(trials), 1, figsize=(8, 3.2 * len(trials)), squeeze=False)
        for ax, trial in zip(axes[:, 0], trials, strict=True):
            periods = sorted(p for t, p in self.by_status if t == trial)
            width = 0.8 / len(STATUSES)
            for i, status in enumerate(STATUSES):
                values = [self.by_status[(trial, p)][status] for p in periods]
                ax.bar(
                    [x + i * width for x in range(len(periods))],
                    values,
                    width,
                    label=status.replace("_", " "),
                )
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(periods))], periods)
            ax.set_title(f"{trial}: screenings by outcome")
            ax.set_ylabel("screenings")
            ax.legend(fontsize=7, ncols=3)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)


def screening_log(
    screenings: Iterable[tuple[Screening, Protocol]], period: Period = "month"
) -> ScreeningLog:
    """Count screenings, streamed.

    Nothing but counts is kept, and the codes of passes over several trials while counting.
    """
    log = ScreeningLog()
    for screening, protocol in screenings:
        log.add(screening, protocol, period)
    return log
