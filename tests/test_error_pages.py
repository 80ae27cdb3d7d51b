"""Error pages look like the app, on phones too, and the 500 page needs nothing to render."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


@pytest.mark.urls("tests.urls_failing")
def test_the_500_page_is_styled_and_needs_no_database(owner, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/failing/")
    assert response.status_code == 500
    html = response.content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<main id="main">' in html
    assert "<h1>Something went wrong</h1>" in html
    # A fixed path: the manifest storage keeps css/app.css beside its hashed copy.
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    assert settings.STATIC_URL == "/static/"
    assert finders.find("css/app.css")
    # Only the session and the user the failing view was reached with, nothing for the page.
    assert all("django_session" in q["sql"] or "auth_user" in q["sql"] for q in queries)


def test_the_500_template_uses_no_template_tags():
    text = (Path(settings.BASE_DIR) / "templates" / "500.html").read_text()
    assert "{%" not in text and "{{" not in text


def test_the_404_page_has_the_app_around_it(owner_client):
    response = owner_client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<meta name="viewport"' in html and '<main id="main"' in html
