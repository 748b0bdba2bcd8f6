"""What a run needs to know about the ranks it runs on (torchrun/accelerate launch several)."""

import os

import torch


def world_size() -> int:
    """Ranks of this run (torchrun/accelerate set WORLD_SIZE); 1 when it runs alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def memory_over_ranks(report: dict) -> dict:
    """Rank 0's memory report with every peak replaced by its maximum over the ranks (each rank's kept)."""
    if not distributed():
        return report
    reports: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(reports, report)
    merged = {**report, "ranks": len(reports), "per_rank": reports}
    for key in [k for k in report if k.endswith("_bytes") and "peak" in k]:
        values = [r[key] for r in reports if r.get(key) is not None]
        merged[key] = max(values) if values else None
    merged["memory_method"] = report["memory_method"] + "; the maximum over ranks"
    return merged
