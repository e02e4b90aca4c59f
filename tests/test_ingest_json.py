"""The `jsonl` reader (JSON array, JSON Lines, concatenated arrays) and `ingest` on its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest_helpers import open_ledger, write
from lethe.data.ingest import ingest
from lethe.data.sources import detect, read, readers
from lethe.errors import InputError


@pytest.fixture
def led(tmp_path):
    ledger = open_ledger(tmp_path)
    yield ledger
    ledger.close()


def rows_of(path: Path, **options) -> list:
    return list(read(path, "jsonl", **options))


def test_every_registered_reader_is_tested_somewhere():
    assert set(readers()) >= {"jsonl", "tofu", "wikiextractor", "mediawiki"}


def test_full_json_of_tofu_reads_as_four_concatenated_arrays(shared_data):
    path = shared_data / "tofu" / "full.json"
    assert detect(path) == "jsonl"
    records = rows_of(path)
    assert len(records) == 4000
    assert {r.kind for r in records} == {"qa"}
    assert records[0].external_id == "full.json:0" and records[-1].external_id == "full.json:3999"
    assert records[1000].where.line == 2  # the second array starts on line 2
    assert records[0].content.startswith("Question: Who is this celebrated LGBTQ+ author")


def test_the_three_layouts_give_the_same_documents(tmp_path):
    rows = [
        {"id": "a", "question": "Q1?", "answer": "A1."},
        {"id": "b", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"id": "c", "text": "Plain text.", "title": "C", "tags": ["x"], "source_url": "http://c"},
    ]
    array = write(tmp_path / "rows.json", json.dumps(rows, indent=2))
    lines = write(tmp_path / "rows.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    concatenated = write(tmp_path / "rows2.json", json.dumps(rows[:1]) + "\n" + json.dumps(rows[1:]) + "\n")
    read_back = [[(r.external_id, r.kind, r.content, r.data) for r in rows_of(p)] for p in (array, lines, concatenated)]
    assert read_back[0] == read_back[1] == read_back[2]
    qa, chat, text = rows_of(array)
    assert qa.kind == "qa" and qa.content == "Question: Q1?\nAnswer: A1."
    assert chat.kind == "chat" and chat.content == "user: hi\nassistant: hello"
    assert text.kind == "text" and text.title == "C" and text.tags == ["x"] and text.data == {"source_url": "http://c"}
    assert [r.where.line for r in rows_of(lines)] == [1, 2, 3]


def test_ids_from_a_named_field_or_file_and_row(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"key": 7, "text": "x"}\n{"key": "k2", "text": "y"}\n')
    assert [r.external_id for r in rows_of(path, id_field="key")] == ["7", "k2"]
    assert [r.external_id for r in rows_of(path)] == ["d.jsonl:0", "d.jsonl:1"]
    missing = write(tmp_path / "m.jsonl", '{"key": 1, "text": "x"}\n{"text": "y"}\n')
    with pytest.raises(InputError) as error:
        rows_of(missing, id_field="key")
    assert error.value.where.line == 2 and error.value.where.field == "key"


def test_duplicate_ids_name_both_lines(tmp_path):
    rows = [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}, {"id": "a", "text": "3"}]
    path = write(tmp_path / "dup.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"duplicate id 'a': row 2 \(line 3\) repeats row 0 \(line 1\)") as error:
        rows_of(path)
    assert str(error.value.where.path).endswith("dup.jsonl") and error.value.where.field == "id"


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ('{"text": "a"}\n{"text": "b",}\n', 2, r"malformed JSON: Expecting property name.*at column 14"),
        ('{"text": "a"} {"text": "b"}\n', 1, "one whole object per line"),
        ('{\n  "text": "a"\n}\n', 1, "one whole object per line"),
        ('[{"text": "a"},\n {"text": "b"}\n', 3, r"ends inside an array"),
        ('[{"text": "a"}\n {"text": "b"}]\n', 2, r"expected ',' or '\]'"),
        ('[{"text": "a"},\n\n {"text": "b\n"}]', 3, r"malformed JSON: Invalid control character"),
        ('[{"text": "a"}] x', 1, r"expected '\[' or '\{' between arrays"),
        ("hello\n", 1, r"not JSON"),
    ],
)
def test_malformed_json_names_the_line(tmp_path, text, line, pattern):
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(InputError, match=pattern) as error:
        rows_of(path)
    assert error.value.where.line == line
    assert "bad.json" in str(error.value)


@pytest.mark.parametrize(
    ("row", "field", "pattern"),
    [
        ({"question": "Q?"}, "answer", "missing field 'answer'"),
        ({"question": "Q?", "answer": 3}, "answer", "must be a string"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "content"),
        ({"text": "x", "title": 5}, "title", "must be a string"),
        ({"text": "x", "tags": "a"}, "tags", "list of strings"),
        ({"id": "", "text": "x"}, "id", "empty"),
        ({"id": 1.5, "text": "x"}, "id", "string or an integer"),
        ({"name": "x"}, None, r"needs question \+ answer, messages, or text / content \(found fields: name\)"),
    ],
)
def test_missing_or_wrong_fields_are_named(tmp_path, row, field, pattern):
    path = write(tmp_path / "rows.jsonl", '{"text": "fine"}\n' + json.dumps(row) + "\n")
    with pytest.raises(InputError, match=pattern) as error:
        rows_of(path)
    assert error.value.where.line == 2 and error.value.where.field == field


def test_rows_must_be_objects(tmp_path):
    with pytest.raises(InputError, match="row 1 is a list"):
        rows_of(write(tmp_path / "a.json", '[{"text": "x"}, [1, 2]]'))


@pytest.mark.parametrize("text", ["", "  \n\n", "\ufeff"])
def test_empty_files_are_refused(tmp_path, text):
    with pytest.raises(InputError, match="empty"):
        rows_of(write(tmp_path / "empty.json", text))


def test_non_utf8_bytes_give_the_byte_offset(tmp_path):
    lines = write(tmp_path / "latin.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8: byte 0xe9") as error:
        rows_of(lines)
    assert (error.value.where.line, error.value.where.offset) == (2, 15 + 13)
    head = b'[{"text": "' + b"a" * (1 << 20) + b'"},\n{"text": "\xff"}]'  # past the first read
    array = write(tmp_path / "latin.json", head)
    with pytest.raises(InputError, match="byte 0xff") as error:
        rows_of(array)
    assert error.value.where.offset == head.index(b"\xff") and error.value.where.line == 2


def test_a_row_larger_than_the_buffer_and_a_bom(tmp_path):
    big = "x" * (3 << 20)
    rows = [{"text": "a"}, {"text": big}, {"text": "b"}]
    path = write(tmp_path / "big.json", b"\xef\xbb\xbf" + json.dumps(rows).encode())
    assert [len(r.content) for r in rows_of(path)] == [1, len(big), 1]


def test_ingest_twice_changes_nothing_and_new_content_is_a_revision(led, tmp_path):
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n')
    first = ingest(led, path, source="docs", collection="mine")
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    assert first.collections == {"mine": 2}
    events = len(led.events(limit=1000))
    again = ingest(led, path, source="docs", collection="mine")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert len(led.list_documents(include_old_revisions=True)) == 2
    assert len(led.events(limit=1000)) == events + 1  # only the ingest event itself
    write(path, '{"id": "a", "text": "one, edited"}\n{"id": "b", "text": "two"}\n')
    third = ingest(led, path, source="docs")
    assert (third.added, third.updated, third.unchanged) == (0, 1, 1)
    old, new = led.revisions(led.document("docs:a").id)
    assert (old.revision, new.revision, new.parent_id, old.is_current, new.is_current) == (1, 2, old.id, False, True)


def test_a_bad_row_late_in_the_file_leaves_the_ledger_unchanged(led, tmp_path):
    rows = [json.dumps({"id": f"r{i}", "text": f"row {i}"}) for i in range(5000)] + ['{"id": "bad"}']
    path = write(tmp_path / "late.jsonl", "\n".join(rows) + "\n")
    with pytest.raises(InputError) as error:
        ingest(led, path, source="late")
    assert error.value.where.line == 5001
    assert led.list_documents() == [] and led.sources() == []


def test_ingest_refuses_files_without_documents(led, tmp_path):
    with pytest.raises(InputError, match="no documents"):
        ingest(led, write(tmp_path / "none.json", "[]"), source="x")
    assert led.sources() == []
