"""Demo data for ``manage.py simulate --demo``.

Since the Sonar API's retirement the demo key's samples are Agent API runs (``DEMO_AGENT_TRACKED``,
seeded by ``seed_demo_runs``): one completed, one that finishes about a minute after seeding, one
failed. Two Sonar answers "archived before the retirement" exist only as documents for the
database side (``sonar_archive_samples``), since a retired Sonar API can no longer serve them.
The Sonar demo jobs (``DEMO_TRACKED``, ``seed_demo_jobs``) are still seeded, and answered when
the simulator runs with ``--sonar-live``.

Ids are fixed so that a demo database seeded once keeps pointing at the same upstream jobs every
time the simulator restarts; the jobs' times are relative to the simulator's clock at seeding.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import NamedTuple

from .app import Simulator
from .corpus import generate_completion

DEMO_KEY = "pplx-sim-demo-0000000000000000"
# Where the archived Sonar answers' images point: manage.py simulate's default address, which
# draws them (see images.py).
DEMO_IMAGE_BASE = "http://127.0.0.1:8001"

DEMO_COMPLETED_ID = "3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11"
DEMO_RUNNING_ID = "a71d9c04-5e2b-4f83-b6a1-0c8e3d52f7a9"
DEMO_FAILED_ID = "c2e84b17-9f30-4d6a-8e15-7b4a1f6d03c8"
# The jobs a demo tracks: completed, in progress (finishes ~60 s after seeding), failed.
DEMO_JOB_IDS = (DEMO_COMPLETED_ID, DEMO_RUNNING_ID, DEMO_FAILED_ID)
# Finished jobs of the same key that the demo does not track, so an import page lists something.
DEMO_UNTRACKED_JOB_IDS = (
    "5b9e2f71-0c3a-4d8e-a1f6-93e7c0d4b258",
    "e0d47a3c-6f1b-4b92-8c5d-1a2f9e7b6c30",
    "8c1f5d9e-2a7b-4e03-9b64-f5d0a3c8e712",
)

RUNNING_FINISHES_AFTER = 60
FAILED_ERROR_MESSAGE = (
    "Deep research timed out after exceeding the maximum number of research steps. "
    "Try narrowing the question or splitting it into several requests."
)


class DemoJob(NamedTuple):
    id: str
    question: str
    model: str


DEMO_COMPLETED = DemoJob(
    DEMO_COMPLETED_ID,
    "How do grid-scale sodium-ion batteries compare with lithium iron phosphate for stationary "
    "storage in 2025?",
    "sonar-deep-research",
)
DEMO_RUNNING = DemoJob(
    DEMO_RUNNING_ID,
    "What are the most effective strategies for reducing tail latency in PostgreSQL-backed web "
    "applications?",
    "sonar-deep-research",
)
DEMO_FAILED = DemoJob(
    DEMO_FAILED_ID,
    "Summarize the regulatory landscape for autonomous delivery robots in the EU and US.",
    "sonar-deep-research",
)
# What seed_demo_jobs() returns, available without a Simulator for code that tracks them.
DEMO_TRACKED = (DEMO_COMPLETED, DEMO_RUNNING, DEMO_FAILED)
DEMO_UNTRACKED = (
    DemoJob(
        DEMO_UNTRACKED_JOB_IDS[0],
        "What changed in Django 5.2 compared with Django 5.1?",
        "sonar-pro",
    ),
    DemoJob(
        DEMO_UNTRACKED_JOB_IDS[1],
        "Is it cheaper to run steady inference workloads on spot GPUs or reserved instances?",
        "sonar-reasoning-pro",
    ),
    DemoJob(
        DEMO_UNTRACKED_JOB_IDS[2],
        "Which European cities have the best cycling infrastructure?",
        "sonar",
    ),
)


def seed_demo_jobs(sim: Simulator) -> list[DemoJob]:
    """Create the demo jobs for ``DEMO_KEY``; returns the three tracked ones, in order."""
    sim.add_key(DEMO_KEY)
    completed, running, failed = DEMO_TRACKED
    sim.add_job(
        DEMO_KEY,
        question=completed.question,
        model=completed.model,
        job_id=completed.id,
        created_ago=20 * 60,
        queue_seconds=3,
        run_seconds=11 * 60 + 27,
        words=3000,
        sources=20,
        images=8,
    )
    started_ago = 5 * 60
    sim.add_job(
        DEMO_KEY,
        question=running.question,
        model=running.model,
        job_id=running.id,
        created_ago=started_ago,
        queue_seconds=4,
        run_seconds=started_ago - 4 + RUNNING_FINISHES_AFTER,
        words=2500,
        sources=16,
        images=6,
    )
    sim.add_job(
        DEMO_KEY,
        question=failed.question,
        model=failed.model,
        job_id=failed.id,
        created_ago=47 * 60,
        queue_seconds=2,
        run_seconds=9 * 60 + 12,
        outcome="FAILED",
        error_message=FAILED_ERROR_MESSAGE,
    )
    # Hours to days old, as an import page would find them; short runs as for these models.
    for job, ago, run in zip(
        DEMO_UNTRACKED, (3 * 3600, 26 * 3600, 2 * 86400), (9, 41, 4), strict=True
    ):
        sim.add_job(
            DEMO_KEY,
            question=job.question,
            model=job.model,
            job_id=job.id,
            created_ago=ago,
            queue_seconds=1,
            run_seconds=run,
        )
    return list(DEMO_TRACKED)


# -- the Agent API runs ------------------------------------------------------------------------

DEMO_AGENT_COMPLETED_ID = "resp_abf00620-ccfb-4384-955f-369d4b7be9e1"
DEMO_AGENT_RUNNING_ID = "resp_7c4ab303-a3f3-4a1d-ad89-6028e23831fe"
DEMO_AGENT_FAILED_ID = "resp_f7c9b356-7dd3-4677-b849-034ba5e771e9"
# The runs a demo tracks: completed, in progress (finishes ~60 s after seeding), failed.
DEMO_AGENT_RUN_IDS = (DEMO_AGENT_COMPLETED_ID, DEMO_AGENT_RUNNING_ID, DEMO_AGENT_FAILED_ID)
RUN_FAILED_ERROR_MESSAGE = (
    "The run failed: the research exceeded its step budget before an answer was written. "
    "Try narrowing the question."
)


class DemoRun(NamedTuple):
    id: str
    question: str
    preset: str


DEMO_AGENT_COMPLETED = DemoRun(DEMO_AGENT_COMPLETED_ID, DEMO_COMPLETED.question, "medium")
DEMO_AGENT_RUNNING = DemoRun(DEMO_AGENT_RUNNING_ID, DEMO_RUNNING.question, "high")
DEMO_AGENT_FAILED = DemoRun(DEMO_AGENT_FAILED_ID, DEMO_FAILED.question, "medium")
# What seed_demo_runs() returns, available without a Simulator (for demo_setup).
DEMO_AGENT_TRACKED = (DEMO_AGENT_COMPLETED, DEMO_AGENT_RUNNING, DEMO_AGENT_FAILED)


def seed_demo_runs(sim: Simulator) -> list[DemoRun]:
    """Create the demo's Agent API runs for ``DEMO_KEY``; returns them, in order."""
    sim.add_key(DEMO_KEY)
    completed, running, failed = DEMO_AGENT_TRACKED
    sim.add_run(
        DEMO_KEY,
        question=completed.question,
        preset=completed.preset,
        run_id=completed.id,
        created_ago=20 * 60,
        queue_seconds=3,
        run_seconds=41,
        words=3000,
        sources=24,
    )
    started_ago = 90
    sim.add_run(
        DEMO_KEY,
        question=running.question,
        preset=running.preset,
        run_id=running.id,
        created_ago=started_ago,
        queue_seconds=2,
        run_seconds=started_ago - 2 + RUNNING_FINISHES_AFTER,
        words=2500,
        sources=18,
    )
    sim.add_run(
        DEMO_KEY,
        question=failed.question,
        preset=failed.preset,
        run_id=failed.id,
        created_ago=47 * 60,
        queue_seconds=2,
        run_seconds=75,
        outcome="failed",
        error_message=RUN_FAILED_ERROR_MESSAGE,
    )
    return list(DEMO_AGENT_TRACKED)


# -- Sonar answers archived before the retirement ----------------------------------------------

DEMO_SONAR_ARCHIVED = (
    DemoJob(
        "5a545204-c023-45ef-8ad1-0607f1a1726e",
        "How do cities keep drinking water safe during heatwaves?",
        "sonar-deep-research",
    ),
    DemoJob(
        "b477d323-4496-47b4-880f-4c9449f49c92",
        "What are the trade-offs of district heating networks for mid-sized towns?",
        "sonar-pro",
    ),
)
# When each was created (UTC), before the Sonar API's retirement on 2026-09-27.
SONAR_ARCHIVED_AT = (
    int(datetime(2026, 9, 12, 9, 14, 5, tzinfo=UTC).timestamp()),
    int(datetime(2026, 9, 24, 16, 2, 41, tzinfo=UTC).timestamp()),
)
# (queue, run) seconds, and (words, sources, images) of each answer.
_ARCHIVED_SHAPES = (((3, 9 * 60 + 48), (2800, 22, 8)), ((1, 14), (700, 12, 5)))


def sonar_archive_samples(
    image_base: str | None = DEMO_IMAGE_BASE,
) -> list[tuple[str, str, str]]:
    """Two COMPLETED async Sonar jobs as the API sent them before it was retired: (job id,
    question, raw JSON text of the job document, answer with images and related questions).
    The same text every time; ``image_base`` is where the images point (None: example.org)."""
    samples = []
    for job, created, ((queue, run), (words, sources, pictures)) in zip(
        DEMO_SONAR_ARCHIVED, SONAR_ARCHIVED_AT, _ARCHIVED_SHAPES, strict=True
    ):
        finished = created + queue + run
        completion = generate_completion(
            job.question,
            model=job.model,
            words=words,
            sources=sources,
            images=pictures,
            related=True,
            seed=job.id,
            job_id=job.id,
            created=finished,
            image_base=image_base,
        )
        document = {
            "id": job.id,
            "model": job.model,
            "status": "COMPLETED",
            "created_at": created,
            "started_at": created + queue,
            "completed_at": finished,
            "failed_at": None,
            "error_message": None,
            "response": completion,
        }
        samples.append((job.id, job.question, json.dumps(document, ensure_ascii=False)))
    return samples
