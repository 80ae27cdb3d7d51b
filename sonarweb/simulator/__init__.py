"""A stand-in for Perplexity's API (the Agent API, and the retired async Sonar API), for the demo
and the tests.

``app.Simulator`` is a stdlib-only WSGI app, ``server.serve`` runs it on a real socket,
``agent.generate_answer`` and ``corpus.generate_completion`` write the answers, and
``manage.py simulate`` serves it from the command line. The package is an installed app only so
that the command is found; it has no models.
"""
