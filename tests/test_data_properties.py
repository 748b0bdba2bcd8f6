"""Property-based: data files with random encodings, empty cells, few rows, odd unicode and odd column
names load into disjoint splits or end in one PeftbenchError line, never a traceback. Fixed example
budget and derandomized, so CI time stays small and a failure reproduces."""

import csv
import io

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from peftbench.config.config import DataConfig
from peftbench.errors import PeftbenchError
from peftbench.tasks.classification import load_labelled

BUDGET = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    phases=[
        Phase.explicit,
        Phase.generate,
    ],  # no shrinking: each example loads a file, shrinking takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORDS = ["good", "bad", "pain", "sleep", "works", "é", "😀", "a,b", '"q"', "\t", "NaN"]
CELLS = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),  # mostly distinct reviews
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
    st.sampled_from(["", " ", "null"]),
    st.text(max_size=8),
)
LABELS = st.one_of(
    st.sampled_from(["positive", "negative", "neutral"]),
    st.sampled_from(["positive", "negative", "", "NaN", "1", "0"]),
    st.text(max_size=3),
)
HEADERS = st.sampled_from([("text", "label")] * 4 + [("text", "lab el"), ("Text", "label"), ("text",)])
ENCODINGS = st.sampled_from(["utf-8"] * 4 + ["utf-8-sig", "latin-1", "utf-16"])


def _csv(header: tuple[str, ...], rows: list[tuple[str, str]], encoding: str) -> bytes:
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(header)
    for text, label in rows:
        writer.writerow((text, label)[: len(header)])
    return stream.getvalue().encode(encoding, errors="replace")


@BUDGET
@given(
    header=HEADERS,
    rows=st.one_of(
        st.lists(
            st.tuples(CELLS, st.sampled_from(["positive", "negative", "neutral"])), min_size=40, max_size=90
        ),
        st.lists(st.tuples(CELLS, LABELS), max_size=40),
    ),
    encoding=ENCODINGS,
)
def test_any_data_file_loads_or_fails_in_one_line(tmp_path, header, rows, encoding):
    path = tmp_path / "data.csv"
    path.write_bytes(_csv(header, rows, encoding))
    try:
        splits, names, _ = load_labelled(DataConfig(dataset=str(path)))
    except PeftbenchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    texts = {split: set(rows["text"]) for split, rows in splits.items()}
    assert not (texts["train"] & texts["test"]) and not (texts["validation"] & texts["test"])
    assert len(names) >= 2 and all(len(rows) > 0 for rows in splits.values())
