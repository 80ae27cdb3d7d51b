"""Fill a fresh database with N realistic archived answers, fast (``make bench-scale``).

A pool of a few hundred distinct answers is generated from the simulator's corpus and rendered
once (5-40k words, log-uniform, 20-150 sources); the N rows reuse them, so filling 100k rows
takes minutes. Rows are bulk-inserted through the ORM, so the database's own triggers (the
search index) see every row as they would in production. On PostgreSQL the answer's tsvector
is computed once per pool answer and copied (computing it for 100k answers of 17k words would
take hours); on SQLite FTS5 indexes every row itself.

Unless ``full_archive`` is set, only the first row that uses a pool answer stores its raw JSON
and HTML in full; the others keep a short stand-in in those two columns (their Markdown, which
search reads, is always whole). A full 100k SQLite archive is about 60 GB, and no page this
benchmark times reads those columns for more than the one permalink it measures, which is a
full row.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

MEMBERS = 20
BATCH = 250
MODELS = [
    ("sonar-deep-research", 0.62),
    ("sonar-reasoning-pro", 0.14),
    ("sonar-pro", 0.16),
    ("sonar", 0.08),
]
# Eight families of questions, each about 1/8 of the archive: the key noun of one family is
# the search word "in about 12% of answers".
FAMILIES = {
    "geothermal": "geothermal heat pumps in {place}",
    "desalination": "desalination plants for {place}",
    "microgrids": "community microgrids in {place}",
    "vaccines": "mRNA vaccines manufacturing in {place}",
    "semiconductors": "semiconductor fabs in {place}",
    "aquaculture": "offshore aquaculture near {place}",
    "tramways": "tramways and light rail in {place}",
    "permafrost": "permafrost thaw around {place}",
}
PLACES = ["Oslo", "Chile", "Kenya", "Texas", "Japan", "Bavaria", "Quebec", "Morocco", "Vietnam"]
TEMPLATES = [
    "How well do {topic} work, and what do they cost?",
    "What does the evidence say about {topic} over the last decade?",
    "Compare the main approaches to {topic}.",
    "What are the risks and open questions for {topic}?",
]
MISS_WORD = "zyzzogeton"
# Row states: most of an archive is finished.
STATES = [
    ("COMPLETED", 0.90),
    ("FAILED", 0.05),
    ("NOT_FOUND", 0.02),
    ("ERROR", 0.01),
    ("KEY_INVALID", 0.01),
    ("IN_PROGRESS", 0.005),
    ("CREATED", 0.003),
    ("PENDING", 0.002),
]


@dataclass
class PoolAnswer:
    family: str
    question: str
    model: str
    raw_json: str
    sha256: str
    size: int
    html: str
    markdown: str
    cost: Decimal | None
    words: int


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def build_pool(size: int, seed: int = 7) -> list[PoolAnswer]:
    from sonarweb.perplexity.sonar import loads_job
    from sonarweb.simulator.corpus import generate_completion
    from sonarweb.tracker.archive.store import digest, render

    rng = random.Random(seed)
    pool = []
    families = list(FAMILIES)
    for k in range(size):
        family = families[k % len(families)]
        topic = FAMILIES[family].format(place=rng.choice(PLACES))
        question = rng.choice(TEMPLATES).format(topic=topic)
        model = _pick(rng, MODELS)
        words = int(math.exp(rng.uniform(math.log(5_000), math.log(40_000))))
        sources = rng.randint(20, 150)
        completion = generate_completion(
            question, model=model, words=words, sources=sources, images=rng.randint(0, 8), seed=k
        )
        created = 1_700_000_000 + k
        document = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "model": model,
            "status": "COMPLETED",
            "created_at": created,
            "started_at": created + 3,
            "completed_at": created + 400,
            "response": completion,
        }
        raw = json.dumps(document)
        job = loads_job(raw)
        rendering = render(job.response, document["id"])
        sha, size_bytes = digest(raw)
        cost = job.response.total_cost if job.response else None
        pool.append(
            PoolAnswer(
                family=family,
                question=question,
                model=model,
                raw_json=raw,
                sha256=sha,
                size=size_bytes,
                html=rendering.html,
                markdown=rendering.markdown,
                cost=Decimal(str(cost)).quantize(Decimal("0.000001")) if cost else None,
                words=words,
            )
        )
    return pool


def make_members(count: int = MEMBERS) -> list[Any]:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    password = make_password(secrets.token_urlsafe(16))
    User.objects.bulk_create(
        [User(username=f"member{n:02d}", password=password) for n in range(count)]
    )
    return list(User.objects.filter(username__startswith="member").order_by("username"))


def _pg_disable_archive_trigger(enable: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        verb = "ENABLE" if enable else "DISABLE"
        cursor.execute(
            f"ALTER TABLE tracker_answerarchive {verb} TRIGGER tracker_search_archive_ins"
        )


def fill(rows: int, pool: list[PoolAnswer], members: list[Any], *, full_archive: bool) -> dict:
    """Insert ``rows`` tracked requests (most with an archive), oldest first."""
    from django.db import connection, transaction
    from django.utils import timezone

    from sonarweb.answers.render import RENDER_VERSION
    from sonarweb.tracker.models import AnswerArchive, TrackedRequest

    rng = random.Random(11)
    vendor = connection.vendor
    if vendor == "sqlite":
        with connection.cursor() as cursor:
            # A benchmark fill can lose everything on a crash; it saves half the time.
            cursor.execute("PRAGMA synchronous=OFF")
    elif vendor == "postgresql":
        _pg_disable_archive_trigger(enable=False)
    now = timezone.now()
    span = timedelta(days=3 * 365)
    used: set[int] = set()
    mapping: list[tuple[int, int]] = []
    families: dict[str, int] = {}
    started = time.monotonic()
    for start in range(0, rows, BATCH):
        count = min(BATCH, rows - start)
        batch: list[TrackedRequest] = []
        picks: list[tuple[int, str]] = []
        for i in range(start, start + count):
            k = rng.randrange(len(pool))
            answer = pool[k]
            state = _pick(rng, STATES)
            created = now - span + span * (i / rows) + timedelta(microseconds=rng.randrange(1000))
            fields: dict[str, Any] = {
                "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "added_by": members[rng.randrange(len(members))],
                "created": created,
                "question": answer.question,
                "title": f"{answer.family.title()} notes {i}" if rng.random() < 0.1 else "",
                "model": answer.model,
                "upstream_created_at": created,
                "next_poll_at": None,
            }
            if state in ("COMPLETED", "FAILED"):
                fields.update(status=state, started_at=created + timedelta(seconds=3))
                if state == "COMPLETED":
                    fields.update(
                        completed_at=created + timedelta(seconds=rng.randint(60, 1800)),
                        total_cost=answer.cost,
                        archived_at=created + timedelta(minutes=31),
                    )
                else:
                    fields.update(failed_at=created + timedelta(minutes=5), error_message="Failed.")
            elif state in ("IN_PROGRESS", "CREATED"):
                # Old rows upstream forgot long ago; they show what they last knew.
                fields.update(
                    status=state, state="ERROR" if created < now - span / 2 else "PENDING"
                )
            else:
                fields.update(state=state)
            batch.append(TrackedRequest(**fields))
            picks.append((k, state))
        with transaction.atomic():
            made = TrackedRequest.objects.bulk_create(batch)
            if any(t.pk is None for t in made):
                # Older SQLite has no RETURNING: read the ids back.
                ids = dict(
                    TrackedRequest.objects.filter(
                        request_id__in=[t.request_id for t in batch]
                    ).values_list("request_id", "pk")
                )
                for t in made:
                    t.pk = ids[t.request_id]
            archives = []
            for tracked, (k, state) in zip(made, picks, strict=True):
                if state != "COMPLETED":
                    continue
                answer = pool[k]
                families[answer.family] = families.get(answer.family, 0) + 1
                whole = full_archive or k not in used
                used.add(k)
                raw = answer.raw_json if whole else json.dumps({"pool_answer": k})
                archives.append(
                    AnswerArchive(
                        tracked_id=tracked.pk,
                        raw_json=raw,
                        sha256=answer.sha256 if whole else hashlib.sha256(raw.encode()).hexdigest(),
                        size=answer.size if whole else len(raw),
                        archived_at=tracked.archived_at,
                        rendered_html=answer.html
                        if whole
                        else f"<p>Benchmark row: pool answer {k}, stored whole once.</p>",
                        markdown=answer.markdown,
                        render_version=RENDER_VERSION,
                        rendered_at=tracked.archived_at,
                    )
                )
                mapping.append((tracked.pk, k))
            AnswerArchive.objects.bulk_create(archives)
        done = start + count
        if done % (BATCH * 40) == 0 or done == rows:
            rate = done / (time.monotonic() - started)
            print(f"  filled {done:,}/{rows:,} rows ({rate:,.0f} rows/s)", flush=True)
    if vendor == "postgresql":
        _pg_bodies(pool, mapping)
        _pg_disable_archive_trigger(enable=True)
    _analyze(vendor)
    return {"families": families, "archived": len(mapping)}


def _pg_bodies(pool: list[PoolAnswer], mapping: list[tuple[int, int]]) -> None:
    """Each row's answer vector, copied from its pool answer's (computed once)."""
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS tracker_searchdocument_match")
        cursor.execute("CREATE TEMP TABLE bench_pool (k int PRIMARY KEY, body tsvector)")
        for k, answer in enumerate(pool):
            cursor.execute(
                "INSERT INTO bench_pool VALUES (%s, tracker_search_body(%s))", [k, answer.markdown]
            )
        cursor.execute("CREATE TEMP TABLE bench_map (tracked_id bigint PRIMARY KEY, k int)")
        for start in range(0, len(mapping), 5000):
            chunk = mapping[start : start + 5000]
            cursor.execute(
                "INSERT INTO bench_map SELECT * FROM unnest(%s::bigint[], %s::int[])",
                [[t for t, _ in chunk], [k for _, k in chunk]],
            )
        cursor.execute(
            "UPDATE tracker_searchdocument d SET body = p.body FROM bench_map m "
            "JOIN bench_pool p ON p.k = m.k WHERE d.tracked_id = m.tracked_id"
        )
        print(f"  answer vectors copied in {time.monotonic() - started:.0f} s", flush=True)
        # A GIN index over 100k answers builds much faster with room to sort in.
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            "CREATE INDEX tracker_searchdocument_match ON tracker_searchdocument "
            "USING gin ((head || body))"
        )
        cursor.execute("DROP TABLE bench_pool")
        cursor.execute("DROP TABLE bench_map")
    print(f"  search index built in {time.monotonic() - started:.0f} s", flush=True)


def _analyze(vendor: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def running_jobs(sim_base: str, members: list[Any], keys: list[str], jobs: int) -> list[str]:
    """``jobs`` in-progress jobs spread over the members' keys, tracked; returns their slugs."""
    import httpx

    from sonarweb.tracker.models import ApiKey, TrackedRequest

    # A database kept from an earlier run (--reuse) still has that run's keys and jobs.
    TrackedRequest.objects.filter(question__startswith="Polling scenario question ").delete()
    ApiKey.objects.filter(user__in=members).delete()
    slugs = []
    for user, key in zip(members, keys, strict=False):
        api_key = ApiKey(user=user)
        api_key.set_secret(key)
        api_key.save()
    for n in range(jobs):
        i = n % len(keys)
        # Agent runs, as research runs today: each is polled with its own GET.
        job_id = httpx.post(
            f"{sim_base}/_sim/runs",
            json={"key": keys[i], "question": f"Polling scenario question {n}"},
            timeout=10,
        ).json()["id"]
        tracked = TrackedRequest.objects.create(
            request_id=job_id, added_by=members[i], question=f"Polling scenario question {n}"
        )
        slugs.append(tracked.slug)
    return slugs


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
