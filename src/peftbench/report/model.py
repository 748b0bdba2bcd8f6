"""The report as data: what build() computes and every renderer prints."""

from dataclasses import dataclass, field


@dataclass
class Report:
    title: str
    task: str
    reference: str | None
    metrics: list[str]
    rows: list[dict]
    verdict: list[str]
    warnings: list[str]
    figures: dict[str, bytes] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    lr_search: dict | None = None  # lr_search.json of a fair-comparison experiment
    figure_notes: dict[str, str] = field(default_factory=dict)  # figure title -> what it shows
    explore: dict | None = None  # explore.explore_data: the interactive plot's metrics and points
    provenance: list[tuple[str, str]] = field(default_factory=list)  # (what, its value), listed once
