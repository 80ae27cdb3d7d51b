"""Is a background refresher alive here? Read from the passes it records in the database
(``RefresherBeat``) by the container health check (sonarweb/healthcheck.py) and the staff page."""

# A refresher is alive while it finished a pass within this many refresh intervals.
INTERVALS = 10
