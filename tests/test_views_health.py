from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_is_public_and_checks_the_database(anon_client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = anon_client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]
