"""The mail the services send the administrators and the users: one plain
text message, marked Auto-Submitted, handed to Postfix over SMTP or to its
sendmail."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def message(sender, recipients, subject, body, domain=None):
    """The message, with a Message-ID of `domain` (else the sender's)."""
    msg = EmailMessage()
    msg['From'] = sender
    msg['To'] = ', '.join(recipients)
    msg['Subject'] = subject
    msg['Date'] = formatdate(localtime=True)
    msg['Message-ID'] = make_msgid(domain=domain or sender.rpartition('@')[2] or None)
    msg['Auto-Submitted'] = 'auto-generated'
    msg.set_content(body)
    return msg


def send_smtp(msg, recipients, envelope_from, host='127.0.0.1', port=25, cafile=None, timeout=60):
    """Hand the message to an SMTP server. With `cafile` (the MX is another
    host), STARTTLS first, the server's certificate checked against it."""
    with smtplib.SMTP(host, int(port), timeout=timeout) as client:
        if cafile:
            client.starttls(context=ssl.create_default_context(cafile=cafile))
        client.send_message(msg, from_addr=envelope_from, to_addrs=recipients)


def send_sendmail(msg, recipients, envelope_from, sendmail='/usr/sbin/sendmail'):
    """Hand the message to Postfix's sendmail (no network, no login)."""
    subprocess.run([sendmail, '-i', '-f', envelope_from, '--', *recipients], input=msg.as_bytes(), check=True)
