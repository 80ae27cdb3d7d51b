"""Completion webhooks: staff's endpoints, the outbox of deliveries, and their sending.

The status changes that end a request write one outbox row per matching endpoint in their own
transaction (``outbox``); the refresher's chore ``webhooks`` sends them (``delivery``), each
within a total deadline, through the image fetcher's SSRF guard (``sender``). docs/webhooks.md
describes the events, the payload, signatures and retries.
"""
