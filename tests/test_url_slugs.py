"""Slugs and share tokens in URLs: only what the slug converter accepts reaches the database.

PostgreSQL refuses NUL bytes in text with a DataError, which would be a 500; run this file
against PostgreSQL too (DATABASE_URL=$(bash scripts/postgres.sh)).
"""

from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve

pytestmark = pytest.mark.django_db


def test_slug_and_token_urls_refuse_nul_bytes(anon_client, owner_client):
    for path in ("/r/\x00/", "/s/\x00/", "/r/a\x00b/status/"):
        with pytest.raises(Resolver404):
            resolve(path)
    assert anon_client.get("/s/%00/").status_code == 404
    assert owner_client.get("/r/%00/").status_code == 404
    assert owner_client.get("/r/%00/status/").status_code == 404
    assert owner_client.get("/r/%00/answer.json").status_code == 404
    response = owner_client.get("/badges/?s=%00&s=a%00b", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
