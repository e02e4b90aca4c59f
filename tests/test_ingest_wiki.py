"""The `wikiextractor` and `mediawiki` readers: the real Wikipedia sample, revisions, bad input."""

from __future__ import annotations

import bz2
import json
import time

import pytest

from ingest_helpers import open_ledger, write
from lethe.data.ingest import ingest
from lethe.data.sources import detect, read
from lethe.errors import InputError


@pytest.fixture
def led(tmp_path):
    ledger = open_ledger(tmp_path)
    yield ledger
    ledger.close()


# -- WikiExtractor -----------------------------------------------------------------------------


def test_the_real_wikipedia_sample(ledger, shared_data):
    wiki = shared_data / "wiki" / "enwiki-2015"
    assert detect(wiki) == "wikiextractor" and detect(wiki / "wiki_03") == "wikiextractor"
    started = time.perf_counter()
    report = ingest(ledger, wiki, source="wiki", collection="enwiki")
    seconds = time.perf_counter() - started
    assert (report.added, report.collections) == (648, {"enwiki": 648})
    print(f"Wikipedia sample: 648 articles in {seconds:.2f}s ({648 / seconds:,.0f} docs/s)")
    index = [json.loads(line) for line in (wiki / "articles_index.jsonl").read_text().splitlines()]
    docs = ledger.list_documents(source="wiki", limit=1000)
    assert [d.external_id for d in docs] == [str(a["id"]) for a in index]
    assert [d.title for d in docs] == [a["title"] for a in index]
    first = docs[0]
    assert first.title == "Anarchism" and first.meta["url"] == "http://en.wikipedia.org/wiki?curid=12"
    assert first.content.startswith("Anarchism\n\nAnarchism is a political philosophy")
    assert not first.content.endswith("\n")
    again = ingest(ledger, wiki, source="wiki")
    assert (again.added, again.unchanged) == (0, 648)


DOC = '<doc id="{id}" url="http://x/?curid={id}" title="{title}">\n{title}\n\nBody of {title}.\n</doc>\n'


@pytest.mark.parametrize(
    ("text", "line", "field", "pattern"),
    [
        (DOC.format(id=1, title="A") + '<doc url="u" title="B">\nB\n</doc>\n', 6, "id", "no 'id' attribute"),
        (DOC.format(id=1, title="A") + '<doc id="2" title="B">\nB\n', 7, None, "missing </doc>"),
        ('<doc id="1" title="A">\nA\n<doc id="2" title="B">\n</doc>\n', 3, None, "before the article opened at line 1"),
        ("stray text\n" + DOC.format(id=1, title="A"), 1, None, "text outside"),
        (DOC.format(id=1, title="A") + DOC.format(id=1, title="A again"), 6, "id", "duplicate page id '1'"),
        ("\n\n", 1, None, "empty"),
    ],
)
def test_bad_wikiextractor_files(tmp_path, text, line, field, pattern):
    path = write(tmp_path / "wiki_00", text)
    with pytest.raises(InputError, match=pattern) as error:
        list(read(path, "wikiextractor"))
    assert (error.value.where.line, error.value.where.field) == (line, field)


def test_wikiextractor_non_utf8_and_escaped_titles(tmp_path):
    good = DOC.format(id=7, title="Fish &amp; Chips")
    assert next(read(write(tmp_path / "wiki_01", good))).title == "Fish & Chips"
    data = good.encode() + b'<doc id="8" title="B">\nna\xefve\n</doc>\n'
    with pytest.raises(InputError, match="not UTF-8") as error:
        list(read(write(tmp_path / "wiki_02", data), "wikiextractor"))
    assert error.value.where.line == 7 and error.value.where.offset == data.index(b"\xef\x76")


# -- MediaWiki XML -----------------------------------------------------------------------------

NS = "http://www.mediawiki.org/xml/export-0.11/"


def revision(rid: int, parent: int | None, ts: str, text: str, user: str = "Ann") -> str:
    parent_tag = f"<parentid>{parent}</parentid>" if parent else ""
    return (
        f"    <revision>\n      <id>{rid}</id>{parent_tag}\n      <timestamp>{ts}</timestamp>\n"
        f"      <contributor><username>{user}</username><id>4</id></contributor>\n"
        f"      <comment>edit {rid}</comment>\n"
        f'      <text bytes="{len(text)}" xml:space="preserve">{text}</text>\n    </revision>\n'
    )


def export(*pages: str, namespace: str = NS) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<mediawiki xmlns="{namespace}" xml:lang="en">\n'
        "  <siteinfo><sitename>Wikipedia</sitename></siteinfo>\n" + "".join(pages) + "</mediawiki>\n"
    )


def page(pid: int, title: str, revisions: list[str]) -> str:
    head = f"  <page>\n    <title>{title}</title>\n    <ns>0</ns>\n    <id>{pid}</id>\n"
    return head + "".join(revisions) + "  </page>\n"


THREE = page(
    10,
    "Lethe",
    [  # out of timestamp order in the file, as some exports are
        revision(102, 101, "2024-03-01T00:00:00Z", "Lethe is a river of forgetting in Hades."),
        revision(100, None, "2024-01-01T00:00:00Z", "Lethe is a river."),
        revision(101, 100, "2024-02-01T00:00:00Z", "Lethe is a river in Hades.", user="Bob"),
    ],
)


@pytest.mark.parametrize("compressed", [False, True])
def test_three_revisions_of_one_page_are_linked_and_kept(ledger, tmp_path, compressed):
    xml = export(THREE, page(11, "Mnemosyne", [revision(200, None, "2024-01-05T00:00:00Z", "Memory &amp; more.")]))
    path = tmp_path / ("dump.xml.bz2" if compressed else "dump.xml")
    path.write_bytes(bz2.compress(xml.encode()) if compressed else xml.encode())
    assert detect(path) == "mediawiki"
    report = ingest(ledger, path, source="wp")
    assert (report.added, report.updated, report.unchanged) == (2, 2, 0)
    revisions = ledger.revisions(ledger.document("wp:10").id)
    assert [r.meta["revision_id"] for r in revisions] == ["100", "101", "102"]
    assert [r.revision for r in revisions] == [1, 2, 3]
    assert [r.is_current for r in revisions] == [False, False, True]
    assert revisions[1].parent_id == revisions[0].id and revisions[2].parent_id == revisions[1].id
    assert revisions[2].content == "Lethe is a river of forgetting in Hades." and revisions[2].title == "Lethe"
    assert revisions[1].meta["contributor"] == {"username": "Bob", "id": "4"}
    assert revisions[1].meta["parent_revision_id"] == "100" and revisions[1].meta["timestamp"] == "2024-02-01T00:00:00Z"
    assert ledger.document("wp:11").content == "Memory & more."
    again = ingest(ledger, path, source="wp")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)


def test_a_later_dump_adds_a_revision(led, tmp_path):
    older_schema = export(THREE, namespace="http://www.mediawiki.org/xml/export-0.10/")
    ingest(led, write(tmp_path / "a.xml", older_schema), source="wp")
    newer = page(10, "Lethe", [revision(103, 102, "2024-04-01T00:00:00Z", "Lethe (river).")])
    report = ingest(led, write(tmp_path / "b.xml", export(newer)), source="wp")
    assert (report.added, report.updated) == (0, 1)
    current = led.document("wp:10")
    assert current.revision == 4 and led.document(current.parent_id).meta["revision_id"] == "102"


@pytest.mark.parametrize(
    ("xml", "line", "field", "pattern"),
    [
        (export(THREE).replace("</title>", "</titel>", 1), 5, None, "malformed XML: mismatched tag"),
        (export(THREE).replace("<id>101</id>", ""), 22, "revision.id", "<revision> has no <id>"),
        (export(THREE).replace("<id>10</id>", ""), 4, "page.id", "<page> has no <id>"),
        (export(page(12, "Empty", [])), 4, "revision", "has no <revision>"),
        (export(THREE, THREE), 30, "id", "page id 10 appears twice"),
        ("<feed><entry/></feed>\n", 1, None, "root element is <feed>"),
        ("", 1, None, "empty"),
    ],
)
def test_bad_mediawiki_exports(tmp_path, xml, line, field, pattern):
    path = write(tmp_path / "bad.xml", xml)
    with pytest.raises(InputError, match=pattern) as error:
        list(read(path))
    assert (error.value.where.line, error.value.where.field) == (line, field)
    assert "bad.xml" in str(error.value)


def test_mediawiki_non_utf8_names_the_line(tmp_path):
    data = export(THREE).encode().replace(b"river in Hades", b"river in H\xe4des")
    with pytest.raises(InputError, match="malformed XML: not well-formed") as error:
        list(read(write(tmp_path / "latin.xml", data)))
    assert error.value.where.line == 27


def test_a_failed_dump_leaves_nothing(led, tmp_path):
    second = page(11, "M", [revision(200, None, "2024-01-05T00:00:00Z", "x")])
    broken = export(THREE, second).replace("</mediawiki>", "")
    with pytest.raises(InputError, match="malformed XML"):
        ingest(led, write(tmp_path / "broken.xml", broken), source="wp")
    assert led.list_documents(include_old_revisions=True) == []


def test_a_revert_becomes_the_current_revision(led, tmp_path):
    reverted = page(
        10,
        "Lethe",
        [
            revision(100, None, "2024-01-01T00:00:00Z", "Lethe is a river."),
            revision(101, 100, "2024-02-01T00:00:00Z", "Lethe is a rock."),  # vandalism
            revision(102, 101, "2024-03-01T00:00:00Z", "Lethe is a river."),  # its revert
        ],
    )
    path = write(tmp_path / "revert.xml", export(reverted))
    ingest(led, path, source="wp")
    assert led.document("wp:10").content == "Lethe is a river."
    assert [d.revision for d in led.revisions(led.document("wp:10").id)] == [1, 2, 3]
    again = ingest(led, path, source="wp")  # the same dump again changes nothing
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
