"""The benchmark answer: a deep-research sized job document from the simulator's corpus."""

from __future__ import annotations

import json
from typing import Any

from sonarweb.simulator.corpus import generate_completion

QUESTION = "How do grid-scale batteries change electricity markets?"
MODEL = "sonar-deep-research"
REQUEST_ID = "bench-0000-4000-8000-000000000001"
CREATED_AT = 1_760_000_000


def job_document(words: int, sources: int, images: int, seed: int = 1) -> dict[str, Any]:
    """A COMPLETED job as ``GET /v1/async/sonar/{id}`` answers it."""
    completion = generate_completion(
        QUESTION, model=MODEL, words=words, sources=sources, images=images, seed=seed
    )
    return {
        "id": REQUEST_ID,
        "model": MODEL,
        "status": "COMPLETED",
        "created_at": CREATED_AT,
        "started_at": CREATED_AT + 5,
        "completed_at": CREATED_AT + 605,
        "failed_at": None,
        "error_message": None,
        "response": completion,
    }


def job_text(words: int, sources: int, images: int) -> str:
    return json.dumps(job_document(words, sources, images))


AGENT_RUN_ID = "resp_00000000-0000-4000-8000-0000000000b1"


def agent_document(words: int, sources: int, seed: int = 1) -> dict[str, Any]:
    """A completed Agent run as ``GET /v1/agent/{id}`` answers it: no images, as upstream."""
    from sonarweb.simulator.agent import generate_answer, response_document

    answer = generate_answer(
        QUESTION, seed=str(seed), model="openai/gpt-6-luna", words=words, sources=sources
    )
    return response_document(
        AGENT_RUN_ID,
        status="completed",
        model=answer.model,
        created_at=CREATED_AT,
        completed_at=CREATED_AT + 600,
        output=answer.output(),
        usage=answer.usage(),
    )


def agent_text(words: int, sources: int) -> str:
    return json.dumps(agent_document(words, sources))
