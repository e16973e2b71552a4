"""Connections to the mailbox database (PostgreSQL, through Debian's
python3-psycopg2 on the hosts)."""

from __future__ import annotations


def connect(settings, timeout=5):
    """A new connection. `settings` is a database name (a local login as the
    system user, peer authentication) or a dict of libpq keywords (host,
    dbname, user, password, sslmode...), as the services' configurations hold
    them."""
    import psycopg2  # imported when used: the rules and the log reading need no database

    if isinstance(settings, str):
        settings = {'dbname': settings}
    return psycopg2.connect(connect_timeout=timeout, **settings)
