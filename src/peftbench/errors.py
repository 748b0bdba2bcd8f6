import difflib


class PeftbenchError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


def closest(word: str, choices) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most `limit` characters), or its type when empty:
    enough to name a library's problem inside a one-line PeftbenchError."""
    message = str(exc).strip()
    return message.splitlines()[0][:limit] if message else type(exc).__name__
