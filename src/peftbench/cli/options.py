"""Every option is honoured or refused: an option the chosen mode does not read, a value given twice (as a
flag and as --set), or a --set key the command never reads fails with one line naming what to use."""

from typer import Context

from peftbench.errors import PeftbenchError


def given(ctx: Context, name: str) -> bool:
    """Whether the user typed parameter `name` (its Python name) rather than leaving its default. The
    source is compared by name: typer carries its own copy of click's ParameterSource."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _flag(ctx: Context, name: str) -> str:
    param = next(p for p in ctx.command.params if p.name == name)
    return param.opts[0] if param.opts[0].startswith("-") else param.human_readable_name


def refuse_unused(ctx: Context, unused: dict[str, str], when: str) -> None:
    """`unused` maps each parameter this mode does not read to what to use instead."""
    for name, instead in unused.items():
        if given(ctx, name):
            raise PeftbenchError(f"{_flag(ctx, name)} is not used {when}; {instead}")


def override_keys(overrides: list[str] | None) -> list[str]:
    """The keys of `a.b=value` overrides (a malformed one is left to apply_overrides to explain)."""
    return [item.partition("=")[0].strip() for item in overrides or [] if "=" in item]


def _overlaps(key: str, other: str) -> bool:
    return key == other or key.startswith(other + ".") or other.startswith(key + ".")


def refuse_twice(ctx: Context, overrides: list[str] | None, sets: dict[str, str]) -> None:
    """`sets` maps each flag to the config key it writes: giving both, one of the two would be ignored."""
    keys = override_keys(overrides)
    for name, target in sets.items():
        clash = next((k for k in keys if _overlaps(k, target)), None)
        if clash and given(ctx, name):
            raise PeftbenchError(
                f"{_flag(ctx, name)} and --set {clash} both set {target}; give it once, as one or the other"
            )


def reads(key: str, read: tuple[str, ...]) -> bool:
    """`methods*` reads methods and every key under it; `task` reads only task itself."""
    return any(key == r.rstrip("*") or (r.endswith("*") and key.startswith(r[:-1] + ".")) for r in read)


def refuse_unread_keys(overrides: list[str] | None, read: tuple[str, ...], command: str) -> None:
    """A --set key that `command` never reads would change nothing it prints."""
    for key in override_keys(overrides):
        if not reads(key, read):
            keys = ", ".join(r.replace("*", "") for r in read)
            raise PeftbenchError(f"--set {key} changes nothing {command} computes; it reads only {keys}")
