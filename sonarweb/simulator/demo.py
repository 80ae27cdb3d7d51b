"""Demo data for ``manage.py simulate --demo``.

Ids are fixed so that a demo database seeded once keeps pointing at the same upstream jobs every
time the simulator restarts; the jobs' times are relative to the simulator's clock at seeding.
"""

from __future__ import annotations

from typing import NamedTuple

from .app import Simulator

DEMO_KEY = "pplx-sim-demo-0000000000000000"

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
