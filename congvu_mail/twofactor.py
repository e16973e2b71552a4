"""The second factor: one-time codes (RFC 6238 TOTP), recovery codes and app
passwords.

- TOTP as every authenticator app computes it: HMAC-SHA1, 30-second steps,
  6 digits; a code is accepted for its own step and one step either side,
  and only for a step later than the last one used, so no code works twice.
- Recovery codes: ten per enrolment, random, stored as SHA-256 hashes,
  each good once (for a lost phone).
- App passwords: random and long (120 bits), one per device, for the mail
  clients (IMAP, POP3, SMTP submission, ManageSieve) and the directory bind
  of an account with the second factor on. Stored as SHA-256: a random
  secret of that length needs no slow hash, and the mailbox database can
  check one itself (Dovecot's passdb, congvu_app_password_use()).
- The TOTP secret is stored encrypted (AES-256-GCM, python3-cryptography on
  the hosts) with a key kept in a file outside the database,
  /etc/congvu-mail/twofactor.key (role mailpassword).

Everything but the encryption and the QR code is the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
import urllib.parse

STEP = 30
DIGITS = 6
WINDOW = 1
SECRET_BYTES = 20
RECOVERY_CODES = 10
KEY_BYTES = 32
# Lower-case letters and digits without 0, 1, l, o: nothing to mistype.
_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'


def hotp(key, counter, digits=DIGITS, digest='sha1'):
    """RFC 4226: the code of `counter` for the raw `key` (bytes)."""
    mac = hmac.new(key, struct.pack('>Q', counter), digest).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def time_step(now=None, step=STEP):
    """The RFC 6238 time step of `now` (Unix seconds; default: now)."""
    return int((time.time() if now is None else now) // step)


def totp(key, now=None, step=STEP, digits=DIGITS, digest='sha1'):
    """RFC 6238: the code at `now` for the raw `key`."""
    return hotp(key, time_step(now, step), digits, digest)


def verify(key, code, last_step=0, now=None, window=WINDOW):
    """The time step `code` is good for (within `window` steps of now and
    later than `last_step`), or None. The caller stores the step returned,
    so that the same code, or an older one, is refused next time."""
    code = normalize_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = time_step(now)
    for candidate in range(current - window, current + window + 1):
        if candidate > last_step and hmac.compare_digest(hotp(key, candidate), code):
            return candidate
    return None


def normalize_code(code):
    """A code as typed (spaces, dashes, upper case) in its stored form."""
    return ''.join(ch for ch in str(code).lower() if ch.isalnum())


def new_secret():
    """A new TOTP key: 160 random bits, as RFC 4226 recommends."""
    return secrets.token_bytes(SECRET_BYTES)


def secret_text(key):
    """The key as an authenticator app takes it typed in: base32, no padding."""
    return base64.b32encode(key).decode('ascii').rstrip('=')


def secret_from_text(text):
    """The raw key from its base32 text (spaces and case ignored)."""
    text = ''.join(str(text).split()).upper()
    return base64.b32decode(text + '=' * (-len(text) % 8))


def otpauth_uri(key, account, issuer):
    """The otpauth:// URI an authenticator app reads from the QR code."""
    label = urllib.parse.quote('%s:%s' % (issuer, account))
    query = urllib.parse.urlencode({'secret': secret_text(key), 'issuer': issuer, 'algorithm': 'SHA1',
                                    'digits': DIGITS, 'period': STEP})
    return 'otpauth://totp/%s?%s' % (label, query)


def qr_svg(text):
    """`text` as a QR code, an SVG document (Debian's python3-qrcode), drawn
    on the server: the webmail shows it without any script or outside site."""
    import io

    import qrcode  # imported when used: only the password service draws codes
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue().decode('utf-8')


def _random_text(length):
    return ''.join(secrets.choice(_ALPHABET) for _ in range(length))


def recovery_codes(count=RECOVERY_CODES):
    """`count` new recovery codes, 60 random bits each, as 'xxxx-xxxx-xxxx'."""
    return ['-'.join(_random_text(4) for _ in range(3)) for _ in range(count)]


def recovery_hash(code):
    """How a recovery code is stored (and looked up): SHA-256 of its normal form."""
    return hashlib.sha256(normalize_code(code).encode('ascii')).hexdigest()


def app_password():
    """A new app password: 24 characters (120 random bits) in groups of four."""
    return '-'.join(_random_text(4) for _ in range(6))


def app_password_hash(password):
    """How an app password is stored: SHA-256 of exactly what the client sends,
    the same as the database's encode(sha256(convert_to(p, 'UTF8')), 'hex')."""
    return hashlib.sha256(password.encode('utf-8')).hexdigest()


def new_key():
    """A new encryption key for the TOTP secrets (the key file's content)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii') + '\n'


def read_key(path):
    """The key in the key file at `path` (base64 of 32 bytes)."""
    with open(path, encoding='ascii') as handle:
        key = base64.b64decode(handle.read().strip(), validate=True)
    if len(key) != KEY_BYTES:
        raise ValueError('the key file %s does not hold a %d-byte key' % (path, KEY_BYTES))
    return key


def encrypt(key, plain, context):
    """`plain` (bytes) sealed with AES-256-GCM, bound to `context` (the
    account), as text: 'v1:' + base64(nonce + ciphertext and tag)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, plain, context.encode('utf-8'))
    return 'v1:' + base64.b64encode(nonce + sealed).decode('ascii')


def decrypt(key, text, context):
    """The bytes `encrypt` sealed; raises ValueError when the key, the
    context or the text is not the one it was sealed with."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not text.startswith('v1:'):
        raise ValueError('unknown secret format')
    raw = base64.b64decode(text[3:])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode('utf-8'))
    except InvalidTag as exc:
        raise ValueError('the secret does not open with this key') from exc
