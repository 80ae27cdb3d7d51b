"""A stand-in for Perplexity's async Sonar API, for the demo and the tests.

``app.Simulator`` is a stdlib-only WSGI app, ``server.serve`` runs it on a real socket,
``corpus.generate_completion`` writes the answers, and ``manage.py simulate`` serves it from the
command line. The package is an installed app only so that the command is found; it has no models.
"""
