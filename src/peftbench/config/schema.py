"""Pydantic building blocks under every config section and method's options: strict keys, finite numbers,
folder-safe names, and one-line explanations of validation errors."""

import re
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from peftbench.errors import PeftbenchError, closest

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$"
NAME_FORM = "letters, digits and . _ + = -, starting with a letter or digit (it becomes a folder name)"


def check_name(name: str, what: str) -> str:
    """A name that becomes a folder: no separators, no '..', no spaces, nothing absolute."""
    if not re.fullmatch(NAME_PATTERN, name) or len(name) > 200:
        raise PeftbenchError(f"{what} '{name}' is not a valid name; use {NAME_FORM}")
    return name


def path_safe(name: str | None) -> str | None:
    """Field validator form of check_name (a ValueError, which pydantic reports with the key)."""
    if name is not None and (not re.fullmatch(NAME_PATTERN, name) or len(name) > 200):
        raise ValueError(f"'{name}' is not a valid name; use {NAME_FORM}")
    return name


def _numeric(annotation: Any) -> bool:
    """int or float (alone, optional, in a list), not bool: YAML's true must not pass as 1."""
    kinds = set()
    stack = [annotation]
    while stack:
        item = stack.pop()
        kinds.add(item)
        stack.extend(get_args(item))
    return bool(kinds & {int, float}) and bool not in kinds


class NumbersAreNumbers(BaseModel):
    """Numeric fields take finite numbers only: no .inf/.nan, no true/false."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) for v in values) and _numeric(
            cls.model_fields[info.field_name].annotation
        ):
            raise ValueError("expected a number, not true/false")
        return value


class Strict(NumbersAreNumbers):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _fields_at(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc[:-1]:
        field = model_cls.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        for kind in (annotation, *get_args(annotation)):  # a section, or an optional one (X | None)
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                model_cls = kind
    return list(model_cls.model_fields)


def explain(error: ValidationError, model_cls: type[BaseModel]) -> str:
    """One line per problem, with the closest valid key for misspellings."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            key = str(item["loc"][-1])
            lines.append(f"unknown config key '{where}'{closest(key, _fields_at(model_cls, item['loc']))}")
        else:
            lines.append(f"config key '{where}': {item['msg']}")
    return "; ".join(lines)
