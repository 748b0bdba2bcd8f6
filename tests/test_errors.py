"""The first line of a library's exception, as it appears inside a one-line PeftbenchError."""

from peftbench.errors import first_line


def test_first_line_is_the_first_non_blank_line_cut_to_the_limit():
    assert (
        first_line(ValueError("\n  shape mismatch in q_proj\nTraceback detail")) == "shape mismatch in q_proj"
    )
    assert first_line(ValueError("x" * 500)) == "x" * 200
    assert first_line(ValueError("abcdef"), limit=3) == "abc"


def test_an_empty_message_names_the_exception_type():
    assert first_line(NotImplementedError()) == "NotImplementedError"
    assert first_line(ValueError("  \n ")) == "ValueError"
