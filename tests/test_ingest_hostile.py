"""Hostile input files: every reader refuses them with exit 2, the place named, no traceback,
the ledger unchanged — the listed cases one by one, then hypothesis generating variants."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from lethe.cli import app
from lethe.workspace import Workspace

runner = CliRunner()


@pytest.fixture
def ledger_state(initialized_workspace, tmp_path):
    """A workspace holding one document; returns a function snapshotting every table's rows."""
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"id": "seed", "text": "already here"}\n')
    assert runner.invoke(app, ["data", "add", str(seed), "--source", "seed"]).exit_code == 0
    ws = Workspace.from_env()

    def snapshot() -> dict[str, int]:
        engine = ws.ledger.engine
        with engine.connect() as conn:
            return {
                table: conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
                for table in inspect(engine).get_table_names()
            }

    return snapshot


def refused(path: Path, snapshot, *extra: str, env: dict | None = None) -> str:
    before = snapshot()
    result = runner.invoke(app, ["data", "add", str(path), "--source", "hostile", *extra], env=env)
    output = result.output
    assert result.exit_code == 2, (output, result.exception)
    assert "Traceback" not in output
    assert path.name in output or any(p.name in output for p in path.parent.glob("*")), output
    assert snapshot() == before
    return output


def jsonl(tmp_path: Path, *rows: str, name: str = "docs.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes("\n".join(rows).encode("utf-8", "surrogatepass") + b"\n")
    return path


GOOD = '{"id": "a", "text": "fine"}'


@pytest.mark.parametrize(
    "row, says",
    [
        ('{"id": "b", "text": "x", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        ('{"id": "b", "text": "x", "meta": ' + "[" * 70 + "]" * 70 + "}", "nested"),
        ('{"id": ' + "9" * 5000 + ', "text": "x"}', "64 bits"),
        ('{"id": "b", "text": "x\\ud800y"}', "surrogate"),
        ('{"id": "b", "text": "x", "meta": {"score": NaN}}', "NaN"),
        ('{"id": "b", "text": "x", "meta": {"score": Infinity}}', "Infinity"),
        ('{"id": "b", "text": "x", "meta": {"score": 1e999}}', "finite"),
        ('{"id": "b", "text": "x", "text": "y"}', "duplicate key"),
    ],
)
@pytest.mark.parametrize("layout", ["lines", "array"])
def test_hostile_json_rows_name_the_line(tmp_path, ledger_state, row, says, layout):
    if layout == "lines":
        path = jsonl(tmp_path, GOOD, row)
    else:
        path = tmp_path / "docs.json"
        path.write_text("[" + GOOD + ",\n" + row + "]\n")
    output = refused(path, ledger_state)
    assert "line 2" in output and says in output


def test_a_row_over_the_document_limit_is_refused_while_streaming(tmp_path, ledger_state):
    big = '{"id": "b", "text": "' + "x" * 300_000 + '"}'
    env = {"LETHE_MAX_DOCUMENT_BYTES": "100000"}
    output = refused(jsonl(tmp_path, GOOD, big), ledger_state, env=env)
    assert "line 2" in output and "limit" in output
    array = tmp_path / "docs.json"
    array.write_text("[" + GOOD + ",\n" + big + "]")
    assert "limit" in refused(array, ledger_state, env=env)


def _wiki_xml(text_body: bytes) -> bytes:
    return (
        b"<mediawiki>\n<page>\n<title>T</title>\n<id>1</id>\n<revision>\n<id>1</id>\n"
        b"<timestamp>2020-01-01T00:00:00Z</timestamp>\n<text>"
        + text_body
        + b"</text>\n</revision>\n</page>\n</mediawiki>\n"
    )


def test_truncated_bz2_is_a_clean_error(tmp_path, ledger_state):
    whole = bz2.compress(_wiki_xml(b"some text " * 2000))
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(whole[: len(whole) // 2])
    assert "line" in refused(path, ledger_state)


def test_a_bz2_bomb_is_refused_before_it_is_held(tmp_path, ledger_state):
    compressor = bz2.BZ2Compressor(9)
    head, tail = _wiki_xml(b"\x00").split(b"\x00")
    parts = [compressor.compress(head)]
    block = b"a" * (1 << 20)
    for _ in range(400):  # 400 MB of <text> in a few hundred bytes
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(tail))
    parts.append(compressor.flush())
    path = tmp_path / "bomb.xml.bz2"
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size < 10_000
    output = refused(path, ledger_state)
    assert "limit" in output and "line 5" in output


def test_invalid_xml_characters_are_refused(tmp_path, ledger_state):
    path = tmp_path / "dump.xml"
    path.write_bytes(_wiki_xml(b"bad &#xD800; here"))
    assert "line" in refused(path, ledger_state)


def test_a_symlink_leaving_the_tofu_directory_is_refused(tmp_path, ledger_state):
    outside = tmp_path / "secret.json"
    outside.write_text('[{"question": "q", "answer": "a"}]')
    tofu = tmp_path / "tofu"
    tofu.mkdir()
    (tofu / "full.json").symlink_to(outside)
    assert "symlink" in refused(tofu, ledger_state)


def test_a_symlink_leaving_the_wikiextractor_directory_is_refused(tmp_path, ledger_state):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "wiki_00").write_text('<doc id="1" url="u" title="T">\nT\n\nbody\n</doc>\n')
    wiki = tmp_path / "wiki"
    (wiki / "AA").mkdir(parents=True)
    (wiki / "AA" / "wiki_00").write_text('<doc id="2" url="u" title="U">\nU\n\nbody\n</doc>\n')
    (wiki / "AA" / "wiki_01").symlink_to(outside / "wiki_00")
    assert "symlink" in refused(wiki, ledger_state, "--format", "wikiextractor")


# -- generated variants --------------------------------------------------------------------

POISONS = {
    "deep": "[" * 5000 + "]" * 5000,
    "huge_int": "1" + "0" * 400,
    "nan": "NaN",
    "infinity": "-Infinity",
    "overflow": "1e400",
    "surrogate": '"\\udc00"',
}


def _json_variant(layout: str, rows: list[dict], victim: int, field: str, poison: str) -> str:
    encoded = [json.dumps(r) for r in rows]
    row = encoded[victim]
    if poison == "duplicate":
        first_key = next(iter(rows[victim]))  # repeat a key the row really has
        encoded[victim] = row[:-1] + f', "{first_key}": "again"' + "}"
    else:
        encoded[victim] = row[:-1] + f', "{field}": {POISONS[poison]}' + "}"
    if layout == "lines":
        return "\n".join(encoded) + "\n"
    return "[\n" + ",\n".join(encoded) + "\n]\n"


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layout=st.sampled_from(["lines", "array", "tofu"]),
    contents=st.lists(texts, min_size=1, max_size=6),
    data=st.data(),
    poison=st.sampled_from([*POISONS, "duplicate"]),
    field=st.sampled_from(["meta", "extra", "tags"]),
)
def test_malformed_json_variants_exit_2_naming_the_line(
    tmp_path_factory, ledger_state, layout, contents, data, poison, field
):
    tmp = tmp_path_factory.mktemp("variant")
    victim = data.draw(st.integers(0, len(contents) - 1))
    if layout == "tofu":
        rows = [{"question": c, "answer": c[::-1]} for c in contents]
        (tmp / "tofu").mkdir()
        path = tmp / "tofu"
        (path / "full.json").write_text(_json_variant("array", rows, victim, field, poison))
    else:
        rows = [{"id": f"r{i}", "text": c} for i, c in enumerate(contents)]
        path = tmp / ("docs.jsonl" if layout == "lines" else "docs.json")
        path.write_text(_json_variant(layout, rows, victim, field, poison))
    output = refused(path, ledger_state)
    line = victim + 1 if layout == "lines" else victim + 2
    assert f"line {line}" in output, output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(min_size=1, max_size=200),
    cut=st.floats(0.05, 0.95),
    mutation=st.sampled_from(["truncate_bz2", "bad_byte", "bad_charref", "unclosed"]),
)
def test_malformed_mediawiki_variants_exit_2(tmp_path_factory, ledger_state, body, cut, mutation):
    tmp = tmp_path_factory.mktemp("xml")
    safe = body.replace(b"<", b"").replace(b"&", b"").decode("latin-1").encode("utf-8")
    xml = _wiki_xml(safe)
    if mutation == "truncate_bz2":
        packed = bz2.compress(xml)
        path = tmp / "dump.xml.bz2"
        path.write_bytes(packed[: max(1, int(len(packed) * cut))])
    else:
        path = tmp / "dump.xml"
        if mutation == "bad_byte":
            xml = xml.replace(b"<text>", b"<text>\xff\xfe")
        elif mutation == "bad_charref":
            xml = xml.replace(b"<text>", b"<text>&#0;")
        else:
            xml = xml[: int(len(xml) * cut)]
        path.write_bytes(xml)
    assert "line" in refused(path, ledger_state)
