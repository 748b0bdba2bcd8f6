"""Generated samples of several runs side by side, for the report and `compare`."""


def merge_samples(found: list[dict], count: int) -> list[dict]:
    """The first `count` saved samples, each with every run's output for the same prompt."""
    found = [r for r in found if r.get("samples")]
    if not found:
        return []
    merged = []
    for i, sample in enumerate(found[0]["samples"][:count]):
        outputs = {
            r["run"]: r["samples"][i]["generated"]
            for r in found
            if i < len(r["samples"]) and r["samples"][i]["prompt"] == sample["prompt"]
        }
        merged.append({"prompt": sample["prompt"], "references": sample["references"], "outputs": outputs})
    return merged
