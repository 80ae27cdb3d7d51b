"""PostgreSQL's adjacent-word pairs (sonarweb/tracker/search/pairs.py): phrases find the same
documents through them as by checking word order, the pairs follow every write, and
documents whose pairs are not made yet are still found."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from sonarweb.tracker import archive, refresher
from sonarweb.tracker.models import AnswerArchive, TrackedRequest
from sonarweb.tracker.search import pairs as search_pairs
from sonarweb.tracker.search import parse
from sonarweb.tracker.search.backends import PostgresBackend
from sonarweb.tracker.search.bound import bounded

from .conftest import archived_request
from .test_search import answer, found

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the word pairs are PostgreSQL's; SQLite's FTS5 index keeps positions itself",
    ),
]

LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis"  # past LONGEST: makes no pair

TEXTS = {
    "in-order": "Ground-source heat pumps keep a high COP. The median improvement was 12%.",
    "reversed": "Pumps heat the house. An improvement in the median case.",
    "apart": "Heat from the network, and pumps for the circulation.",
    "punctuated": "They sell heat; pumps are sold separately. State of the art, 2024 models.",
    "repeated": "Cold cold winters, and heat pumps, heat pumps everywhere.",
    "stop-words": "The state of the art in thermal storage is molten salt.",
    # Every pair of "ground source heat pump", but not in one run: the order check says no.
    "three": "Ground source, then heat pump. A source heat exchanger.",
    "long-word": f"The {LONG_WORD} risk and heat pumps.",
    "numbers": "The 2024 models and the 2023 figures.",
}
QUERIES = [
    '"heat pumps"',
    '"pumps heat"',
    '"median improvement"',
    '"improvement median"',
    '"state of the art"',
    '"cold cold"',
    '"ground source heat pump"',
    '"source heat"',
    f'"{LONG_WORD} risk"',
    '"2024 models"',
    '"heat pumps" cold',
    '"heat pumps" "median improvement"',
    '"thermal storage" salt',
    '"heat pumps" -oslo',
    '"heat pumps" -"median improvement"',
    '"heat pumps" cold -winters',
    '"source heat" ground',
    '"heat pumps" or "molten salt"',
]


@pytest.fixture
def library(owner) -> dict[str, TrackedRequest]:
    rows = {
        name: archived_request(owner, answer(text), request_id=f"job-{name}", question="Q")
        for name, text in TEXTS.items()
    }
    rows["titled"] = archived_request(
        owner,
        answer("Nothing relevant in the answer."),
        request_id="job-titled",
        title="Heat pumps in Oslo",
        question="Which median improvement?",
    )
    return rows


def pairs_of(tracked: TrackedRequest) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tsvector_to_array(pairs) FROM tracker_searchdocument WHERE tracked_id = %s",
            [tracked.pk],
        )
        return set(cursor.fetchone()[0])


def mark_all_pending() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracker_searchdocument SET pairs = array_to_tsvector(ARRAY[%s])",
            [search_pairs.PENDING],
        )


def test_pairs_are_made_from_the_stored_vectors(library):
    made = pairs_of(library["in-order"])
    assert {"heat pump", "median improv", "ground sourc", "sourc heat"} <= made
    assert "pump heat" not in made
    # Every pair of "ground source heat pump", though not in one run.
    assert {"ground sourc", "sourc heat", "heat pump"} <= pairs_of(library["three"])
    # Stop words leave gaps, so they join nothing; punctuation does not (as in phrases).
    assert "state art" not in pairs_of(library["stop-words"])
    assert "heat pump" in pairs_of(library["punctuated"])
    assert {"cold cold", "pump heat"} <= pairs_of(library["repeated"])
    assert not any(LONG_WORD[:10] in pair for pair in pairs_of(library["long-word"]))
    # The title and question make pairs too, the answer's as well.
    assert {"heat pump", "median improv"} <= pairs_of(library["titled"])
    assert search_pairs.pending() == 0


def test_phrases_find_the_same_documents_through_the_pairs_as_by_word_order(library):
    through_pairs = {query: found(query) for query in QUERIES}
    mark_all_pending()  # every document now takes the order check, as before the pairs
    by_order = {query: found(query) for query in QUERIES}
    assert through_pairs == by_order
    assert through_pairs['"heat pumps"'][0] == "job-titled"  # the title ranks first
    assert set(through_pairs['"heat pumps"']) == {
        "job-titled", "job-in-order", "job-punctuated", "job-repeated", "job-long-word",
        "job-three",
    }  # fmt: skip
    assert set(through_pairs['"pumps heat"']) == {"job-reversed", "job-repeated"}
    assert set(through_pairs['"median improvement"']) == {"job-in-order", "job-titled"}
    assert through_pairs['"improvement median"'] == []
    assert through_pairs['"ground source heat pump"'] == ["job-in-order"]
    assert set(through_pairs['"source heat"']) == {"job-in-order", "job-three"}
    assert through_pairs[f'"{LONG_WORD} risk"'] == ["job-long-word"]
    assert set(through_pairs['"2024 models"']) == {"job-punctuated", "job-numbers"}


def test_a_two_word_phrase_is_answered_by_the_pairs_index_alone(library):
    """No order check on documents whose pairs are made: the pair is the phrase. A longer
    phrase, or a word that makes no pair, still has its order checked."""
    backend = PostgresBackend()

    def parts(text: str) -> list[str]:
        return backend.matching(parse(text), ranked=False)[0].split(" UNION ALL ")

    exact, waiting = parts('"heat pumps" cold')
    assert "pairs @@" in exact and "body @@" not in exact
    assert "body @@" in waiting and "pairs @@" in waiting
    longer, _ = parts('"ground source heat pump"')
    assert "pairs @@" in longer and "d.body @@" in longer
    [no_pairs] = parts(f'"{LONG_WORD} risk"')
    assert "pairs @@" not in no_pairs and "body @@" in no_pairs

    sql, params = backend.matching(parse('"heat pumps" cold'), ranked=False)
    with bounded(connection, 5), connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tracker_searchdocument_pairs" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_pairs_follow_archive_rerender_title_question_and_deletion(owner_client, owner):
    tracked = TrackedRequest.objects.create(request_id="job-live", added_by=owner, question="Q")
    assert pairs_of(tracked) == set()
    document = {"id": "job-live", "status": "COMPLETED", **answer("A tidal lagoon in Wales.")}
    job = archive.loads_job(json.dumps(document))
    archive.archive_job(tracked, job, json.dumps(document), {"status": "COMPLETED"})
    assert "tidal lagoon" in pairs_of(tracked) and found('"tidal lagoon"') == ["job-live"]

    stored = AnswerArchive.objects.get(pk=tracked.pk)
    document = {"id": "job-live", "status": "COMPLETED", **answer("The Severn barrage.")}
    AnswerArchive.objects.filter(pk=tracked.pk).update(raw_json=json.dumps(document))
    stored.refresh_from_db()
    archive.rerender(stored, "job-live")
    assert "tidal lagoon" not in pairs_of(tracked) and found('"tidal lagoon"') == []

    owner_client.post(f"/r/{tracked.slug}/title/", {"title": "Estuary power"})
    assert {"estuari power", "severn barrag"} <= pairs_of(tracked)  # the answer's stay
    TrackedRequest.objects.filter(pk=tracked.pk).update(question="Barrage economics")
    assert "barrag econom" in pairs_of(tracked) and found('"barrage economics"') == ["job-live"]

    AnswerArchive.objects.filter(pk=tracked.pk).delete()
    assert "severn barrag" not in pairs_of(tracked) and "estuari power" in pairs_of(tracked)
    tracked.delete()
    assert found('"estuary power"') == []


def test_documents_waiting_for_pairs_are_found_and_filled(library, monkeypatch):
    mark_all_pending()
    assert search_pairs.pending() == len(library)
    assert set(found('"heat pumps"')) >= {"job-in-order", "job-titled"}
    assert search_pairs.fill_pending(2) == 2
    assert search_pairs.pending() == len(library) - 2
    # The refresher fills them in batches.
    monkeypatch.setattr(refresher, "SEARCH_PAIRS_PER_PASS", 3)
    refresher.housekeeping(timezone.now())
    assert search_pairs.pending() == len(library) - 5
    out = StringIO()
    call_command("fill_search_pairs", "--batch", "2", stdout=out)
    assert f"Word pairs made for {len(library) - 5} answers; 0 waiting." in out.getvalue()
    assert "heat pump" in pairs_of(library["in-order"])


def test_pairs_too_long_for_a_tsvector_are_flagged_and_the_phrase_still_found(owner):
    """Pairs of at most 24-character lexemes: the answer's alone always fit the 1 MB a
    tsvector holds. With a very long title and question as well, they may not: the document
    is flagged and its phrases are checked by word order."""
    words = [f"w{i:05d}{'x' * 18}" for i in range(23_000)]  # distinct, 24 characters each
    tracked = archived_request(
        owner,
        answer(" ".join(words[:16_000]) + " heat pumps"),
        request_id="job-huge",
        question=" ".join(words[16_000:]),
    )
    assert pairs_of(tracked) == {search_pairs.TOO_LONG}
    assert found('"heat pumps"') == ["job-huge"]
    assert search_pairs.fill_pending(10) == 0  # flagged, not waiting
