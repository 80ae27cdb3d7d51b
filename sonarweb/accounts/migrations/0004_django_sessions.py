"""Sessions go back to Django's own table (django_session), read by Django's database
session store; the member-naming session table (accounts_session) goes. Nobody is signed out.

Django's store and the one this app had sign session data with the same salt (both store
classes are named SessionStore), so a session's data is copied as it is. Only a session
signed in through the app's member back end, which no longer exists, is signed again naming
Django's ModelBackend: Django signs out a session whose back end is not in
AUTHENTICATION_BACKENDS. Expired sessions, and any that nobody can read (signed with a secret
key the site no longer has), are not copied.

Backwards, the live sessions go to accounts_session with their members, as 0003 moved them.
"""

from django.conf import settings
from django.db import migrations

MEMBER_BACKEND = "sonarweb.accounts.backends.MemberBackend"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
BATCH = 500


def _live(model, alias):
    from django.utils import timezone

    rows = model.objects.using(alias).filter(expire_date__gt=timezone.now()).order_by("pk")
    return rows.values_list("session_key", "session_data", "expire_date").iterator(chunk_size=BATCH)


def _decoded(store, data):
    """The session's data as Django's database store reads it, or None if nobody can."""
    from django.core import signing

    try:
        # The store's salt and serializer, the current key and SECRET_KEY_FALLBACKS.
        return signing.loads(data, salt=store.key_salt, serializer=store.serializer)
    except signing.BadSignature:
        return None


def _copy(model, alias, rows):
    """Write ``rows`` (instances of ``model``), replacing any with the same key."""
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        model.objects.using(alias).filter(pk__in=[r.pk for r in batch]).delete()
        model.objects.using(alias).bulk_create(batch)


def to_django_sessions(apps, schema_editor):
    from django.contrib.auth import BACKEND_SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    Old = apps.get_model("accounts", "MemberSession")
    New = apps.get_model("sessions", "Session")
    alias = schema_editor.connection.alias
    store = SessionStore()
    moved = []
    for key, data, expires in _live(Old, alias):
        decoded = _decoded(store, data)
        if decoded is None:
            continue
        if decoded.get(BACKEND_SESSION_KEY) == MEMBER_BACKEND:
            decoded[BACKEND_SESSION_KEY] = MODEL_BACKEND
            data = store.encode(decoded)
        moved.append(New(session_key=key, session_data=data, expire_date=expires))
    _copy(New, alias, moved)


def to_member_sessions(apps, schema_editor):
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    Old = apps.get_model("sessions", "Session")
    New = apps.get_model("accounts", "MemberSession")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    alias = schema_editor.connection.alias
    store = SessionStore()
    members = {str(pk) for pk in User.objects.using(alias).values_list("pk", flat=True)}
    moved = []
    for key, data, expires in _live(Old, alias):
        decoded = _decoded(store, data)
        if decoded is None:
            continue
        member = str(decoded.get(SESSION_KEY))
        moved.append(
            New(
                session_key=key,
                session_data=data,
                expire_date=expires,
                member_id=User._meta.pk.to_python(member) if member in members else None,
            )
        )
    _copy(New, alias, moved)
    # As 0003 left it: no session data where nothing reads it.
    Old.objects.using(alias).all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_member_sessions"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(to_django_sessions, to_member_sessions),
        migrations.DeleteModel(name="MemberSession"),
    ]
