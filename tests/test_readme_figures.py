"""Every figure in the README's Benchmarks section comes from a file a benchmark or the demo wrote."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmarks_section(text: str) -> str:
    return text[text.index("## Benchmarks") : text.index("## Architecture notes")]


def test_the_readme_tables_are_what_the_results_say():
    _, changed = readme_tables().render(README.read_text(encoding="utf-8"))
    assert changed == [], f"stale README blocks (run benchmarks/readme_tables.py): {changed}"


# Sections whose figures have no results file yet (a bold heading each); remove an entry once its
# figures are generated. The real-base section is generated since 2026-12-02.
# The tuning section states a target ("at least 97 %") and a command's budget ("--budget 30"),
# not measurements; it was hidden behind the real-base entry until that one went.
NOT_YET_GENERATED: tuple[str, ...] = ("**Tuning against the exact answer**",)


def test_no_measured_figure_lives_outside_a_generated_block():
    module = readme_tables()
    prose = module.BLOCK.sub("", benchmarks_section(README.read_text(encoding="utf-8")))
    for heading in NOT_YET_GENERATED:
        if heading in prose:
            start = prose.index(heading)
            end = prose.find("\n**", start + len(heading))
            prose = prose[:start] + (prose[end:] if end != -1 else "")
    # a measured figure: a number with a unit, not a target (≥, ≤, <) nor a shape (16 × 128)
    figures = re.findall(r"(?<![≥≤<>\d.])\d+(?:\.\d+)?\s?(?:%|×(?!\s?\d)| s\b| ms\b| tok/s)", prose)
    assert figures == [], f"figures typed into the README by hand (generate them from a results file): {figures}"


def test_a_changed_result_makes_the_check_fail(tmp_path, monkeypatch):
    module = readme_tables()
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    unlearn = json.loads((results / "unlearn.json").read_text())
    unlearn["rows"][1]["seconds"] += 1.0  # a new run measured something else
    (results / "unlearn.json").write_text(json.dumps(unlearn))
    monkeypatch.setattr(module, "RESULTS", results)
    _, changed = module.render(README.read_text(encoding="utf-8"))
    assert "unlearn" in changed


def test_no_results_file_names_a_machines_directories():
    """Results under benchmarks/results record paths as $LETHE_HOME/..., $LETHE_SHARED_DATA/... or
    relative ones (`lethe.workspace.portable_paths`), never an absolute path of the machine that ran them."""
    import re

    results = ROOT / "benchmarks" / "results"
    absolute = re.compile(r'"/(?:tmp|work|root|home|Users|var|opt|mnt)/[^"]*"')
    found = [
        f"{path.relative_to(results)}: {match.group(0)[:80]}"
        for path in sorted(results.rglob("*.json"))
        for match in absolute.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_portable_paths_record_the_workspace_and_local_paths_undo_it(tmp_path, monkeypatch):
    from lethe.workspace import local_paths, portable_paths

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    value = {str(home / "models" / "v1"): {"path": str(home / "models" / "v1"), "out": str(tmp_path / "out")}}
    recorded = portable_paths(value, home=home)
    assert recorded == {"$LETHE_HOME/models/v1": {"path": "$LETHE_HOME/models/v1", "out": "out"}}
    moved = (tmp_path / "moved").resolve()
    assert local_paths(recorded, home=moved) == {
        str(moved / "models" / "v1"): {"path": str(moved / "models" / "v1"), "out": "out"}
    }
