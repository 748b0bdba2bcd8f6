"""The README and docs/ hold together: links resolve, every page is in the site's nav, the site builds."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")  # CI sets CI=true: skipping there is a failure

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) (.*)$")


def _unfenced(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _prose(text: str) -> str:
    """The text outside code blocks and inline code, where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", _unfenced(text))


def _slug(heading: str) -> str:
    heading = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return heading.strip().replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines = _unfenced(path.read_text()).splitlines()
    return {_slug(m.group(2)) for line in lines if (m := HEADING.match(line))}


def broken_links(path: Path) -> list[str]:
    """Relative links in a markdown file whose file (or heading anchor) does not exist."""
    broken = []
    for target in LINK.findall(_prose(path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    return broken


def _nav_pages(nav: list) -> set[str]:
    pages = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_there_are_docs_pages():
    assert len(PAGES) >= 10


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md) [ok](other.md#a-section) [ok](#page) [web](https://example.org/x.md)\n"
        "`[in code](nowhere.md)`\n[gone](missing.md) [gone](other.md#no-such-section) [gone](#nope)\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#no-such-section", "#nope"]


def test_every_docs_page_is_in_the_site_nav():
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    assert {p.name for p in PAGES} == nav


def test_the_readme_links_every_docs_page():
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall((ROOT / "README.md").read_text())}
    assert {p.name for p in PAGES} - {"index.md"} <= linked


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_the_site_home_repeats_the_readme_two_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme if line.startswith("| run the")]
    assert len(commands) == 2
    home = (DOCS / "index.md").read_text()
    assert all(line in home for line in commands)


def _mkdocs_missing() -> bool:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        return True
    return False


NO_MKDOCS = "mkdocs-material not installed (scripts/setup.sh)"


@pytest.mark.skipif(_mkdocs_missing() and not IN_CI, reason=NO_MKDOCS)
def test_the_site_builds_in_strict_mode(tmp_path):
    assert not _mkdocs_missing(), "CI must build the docs site: pip install -e '.[docs]'"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
        + ["-d", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "index.html").exists()
