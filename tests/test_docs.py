"""The docs site's generated reference pages are what the code says, and the README stays a doorway that CI follows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fomo_host import docs
from fomo_host.spec import ComponentRef, RunSpec

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_reference_pages_are_what_the_generator_writes():
    pages = {"reference/spec.md": docs.spec_page(), "reference/cli.md": docs.cli_page()}
    stale = [name for name, text in pages.items() if (ROOT / "docs" / name).read_text(encoding="utf-8") != text]
    assert stale == [], f"out of date: {stale}; regenerate with python -m fomo_host.docs"


def test_the_committed_components_page_is_what_the_generator_writes():
    missing = docs.missing_first_party()
    if missing:
        pytest.skip(f"first-party plugins not installed here: {missing}")
    page = docs.components_page()
    assert (ROOT / "docs" / "reference" / "components.md").read_text(encoding="utf-8") == page, (
        "out of date: reference/components.md; regenerate with python -m fomo_host.docs"
    )
    from fomo_host.plugins import load_plugins

    for component in load_plugins().registry:
        if component.provider.distribution in docs.first_party_distributions(ROOT):
            assert f"### `{component.name}`" in page, f"{component.kind} {component.name}"


def test_the_check_mode_names_a_stale_page_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(docs, "pages", lambda: {"reference/spec.md": "new\n", "reference/cli.md": "cli\n"})
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "spec.md").write_text("old\n", encoding="utf-8")
    assert docs.main(["--docs", str(tmp_path), "--check"]) == 1
    assert "reference/spec.md" in capsys.readouterr().err
    assert (tmp_path / "reference" / "spec.md").read_text(encoding="utf-8") == "old\n"
    assert not (tmp_path / "reference" / "cli.md").exists()
    assert docs.main(["--docs", str(tmp_path)]) == 0 and docs.main(["--docs", str(tmp_path), "--check"]) == 0


def test_every_spec_key_is_in_the_reference_with_a_description():
    tables = list(docs.spec_tables(RunSpec))
    undocumented = [f"{path or '(top level)'}: {row.key}" for path, _, _, rows in tables for row in rows if not row.description]
    assert undocumented == [], f"spec keys without a description (a docstring under the field, or description=): {undocumented}"
    page = docs.spec_page()
    assert "Usage Documentation" not in page, "a table without a docstring of its own showed pydantic's BaseModel docstring"
    for path, model, _, rows in tables:
        assert (f"## `{path}`" if path else "## Top level") in page
        assert len(rows) == len(model.model_fields)
        for row in rows:
            assert re.search(rf"^\| \[?`{re.escape(row.key)}`", page, re.M), f"{path}: {row.key}"


def test_every_component_table_of_the_spec_names_its_kind():
    component_tables = {path for path, model, _, _ in docs.spec_tables(RunSpec) if issubclass(model, ComponentRef)}
    assert component_tables == set(docs.COMPONENT_KINDS)


def test_the_cli_reference_lists_every_command_and_option():
    from fomo_host.cli import build_parser

    page = docs.cli_page()
    for name, _, parser in docs.subcommands(build_parser()):
        assert f"## `fomo-host {name}`" in page
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in page, f"fomo-host {name} {option}"


def test_the_readme_is_a_doorway_whose_test_command_ci_runs_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350
    quick_start = readme[readme.index("## Quick start") : readme.index("\n## ", readme.index("## Quick start") + 1)]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)
    assert commands == [
        "pip install -r requirements.txt && fomo-host run specs/quickstart.toml",
        "pip install -r requirements-dev.txt && pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(commands[1] in line and not line.lstrip().startswith("#") for line in ci)
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link


def test_the_readmes_run_table_is_the_quickstart_pages():
    def run_table(text: str) -> list[str]:
        lines = text.splitlines()
        start = lines.index("| after task | samples seen | A_KA | A_ZS | GM |")
        return lines[start : start + 8]

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert run_table(readme) == run_table(page)


def result_tables(page: str) -> list[tuple[str, str | None, list[str]]]:
    """(study directory name, --against point, first cells of the rows) of every table printed by a command on the page."""
    tables, command, rows = [], None, None
    for line in [*page.splitlines(), ""]:
        match = re.fullmatch(r"`fomo-host compare runs/([\w.-]+)(?: --best)?(?: --against (\"[^\"]+\"|\S+))? --markdown`:", line)
        if match:
            command = (match.group(1), match.group(2).strip('"') if match.group(2) else None)
        elif line.startswith("|") and command is not None:
            rows = [] if rows is None else rows
            rows.append(line.split("|")[1].strip())
        elif rows is not None and command is not None:
            tables.append((*command, rows[2:]))  # below the header and its separator
            command, rows = None, None
    return tables


def test_every_results_table_names_the_points_as_its_study_labels_them():
    from fomo_host.study.file import load_study_file
    from fomo_host.study.points import expand

    checked = 0
    for page_path in sorted((ROOT / "docs" / "results").glob("*.md")):
        page = page_path.read_text(encoding="utf-8")
        studies = dict(
            (output, study)
            for study, output in re.findall(r"fomo-host sweep\s+(specs/studies/[\w.-]+\.toml)\s+--output\s+runs/([\w.-]+)", page)
        )
        for directory, against, rows in result_tables(page):
            assert directory in studies, f"{page_path.name}: runs/{directory} is made by no `fomo-host sweep ... --output` on the page"
            labels = {point.label for point in expand(load_study_file(ROOT / studies[directory]), [], 0)}
            assert rows and set(rows) <= labels, f"{page_path.name}: runs/{directory}: {sorted(set(rows) - labels)} not in {sorted(labels)}"
            if against is not None:
                assert against in labels and against not in rows
            checked += 1
    assert checked >= 12


def test_the_readmes_findings_table_is_the_findings_pages():
    """The README's row per finding agrees with the page ``fomo-host findings --out`` wrote, and its links resolve."""
    page_path = ROOT / "docs" / "results" / "findings" / "findings.md"
    page = page_path.read_text(encoding="utf-8")
    found = re.findall(r"^\| \[([^\]]+)\]\(#[\w-]+\) \| [^|]+ \| \*\*([a-z ]+)\*\* \((\d+ of \d+) claims hold\)", page, re.M)
    on_page = {title: (verdict, held) for title, verdict, held in found}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| \[([^\]]+)\]\(([^)#]+)#[\w-]+\) \| \*\*([a-z ]+)\*\*(?:, partial: \d+ of \d+ runs)? \| (\d+ of \d+) \| "
        r"\[[^\]]+\]\(([^)]+)\) \|",
        readme,
        re.M,
    )
    assert rows and len(rows) == len(on_page), "the README's findings table and the findings page list different findings"
    for title, linked_page, verdict, held, figure in rows:
        assert on_page.get(title) == (verdict, held), f"README: {title}: {verdict}, {held}; the page: {on_page.get(title)}"
        assert (ROOT / linked_page).resolve() == page_path.resolve() and (ROOT / figure).is_file()
