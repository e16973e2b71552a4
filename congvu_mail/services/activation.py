"""The socket services (sendlimit, mailpassword): systemd opens their Unix
socket (a .socket unit) and starts them on the first connection; each
connection is served in its own thread."""

from __future__ import annotations

import os
import socket
import socketserver
import sys


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def server(handler, service, path=None):
    """A server of `handler` whose requests reach `service` (handler.server.service).
    Without `path`, on the socket systemd passed (file descriptor 3); with one,
    on a socket of its own there (tests)."""
    if path is not None:
        srv = Server(path, handler)
    else:
        srv = Server(None, handler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = socket.socket(fileno=3)
    srv.service = service
    return srv


def serve_systemd_socket(name, handler, service):
    """Serve forever on the socket systemd passed; refuse to start without one."""
    if os.environ.get('LISTEN_FDS') != '1':
        sys.exit('%s: start me through %s.socket' % (name, name))
    server(handler, service).serve_forever()
