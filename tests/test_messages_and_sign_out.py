"""The shared "try again" sentence for rate limits, and where signing out lands."""

from __future__ import annotations

from pathlib import Path

import pytest

from sonarweb.perplexity.client import RateLimited
from sonarweb.tracker.views.messages_upstream import try_again

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("retry_after", "sentence"),
    [
        (None, "Try again in a minute."),
        (0.2, "Try again in 1 second."),
        (7.4, "Try again in 7 seconds."),
    ],
)
def test_try_again_sentence(retry_after, sentence):
    assert try_again(RateLimited(retry_after=retry_after)) == sentence


@pytest.mark.django_db
def test_sign_out_lands_on_the_sign_in_page(owner_client):
    response = owner_client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Sign in" in response.content.decode()
    assert not (ROOT / "templates" / "registration" / "logged_out.html").exists()
