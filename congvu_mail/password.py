# Password rules of the "công vụ" e-mail regulation (Điều 4.1, 4.2) and the
# password hashes Dovecot 2.3 stores.
#
# The filter plugin mail_password hands these functions to Ansible; the
# webmail's password service (congvu_mail.services.mailpassword) calls them
# directly, passing the policy and the hash settings from its configuration.

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import re
import unicodedata
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor

from . import regulation
from .address import vn_ascii as _vn_ascii
from .errors import RuleError

try:
    import passlib.hash as passlib_hash
    from passlib.exc import PasswordValueError
except ImportError:
    passlib_hash = None
    PasswordValueError = ()  # catches nothing

try:  # the C implementation of SHA512-CRYPT (glibc / libxcrypt), about 3x faster
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        import crypt as _crypt
except ImportError:  # Python 3.13 has no crypt module; passlib does the work
    _crypt = None


# The messages. They name the rule broken, never any part of the password.
MSG_NOT_TEXT = 'is not a text string'
MSG_TOO_SHORT = 'shorter than {length} characters (Điều 4.1, {role})'
MSG_MISSING_CLASS = {
    'lower': 'has no lower-case letter (Điều 4.1)',
    'upper': 'has no upper-case letter (Điều 4.1)',
    'digit': 'has no digit (Điều 4.1)',
    'special': 'has no special character (Điều 4.1)',
}
MSG_LOGIN = 'contains the login name (Điều 4.2)'
MSG_REUSED = 'reuses one of the last {history} passwords (Điều 4.2)'

MSG_UNSEEN = ('has a control, invisible or unusual space character; only letters, digits, '
              'punctuation, symbols and plain spaces between them are allowed')
MSG_EDGE_SPACE = 'starts or ends with a space'

# Điều 4.1 character classes, on the NFC text. "Special" is punctuation or a
# symbol (Unicode categories P and S); a space, a letter's accent mark or an
# invisible character is not special.
CHARACTER_CLASSES = {
    'lower': str.islower,
    'upper': str.isupper,
    'digit': lambda c: '0' <= c <= '9',
    'special': lambda c: unicodedata.category(c)[0] in 'PS',
}

# Characters no password may hold: control (Cc), format and invisible (Cf: U+200B,
# U+200D, U+FEFF...), surrogates, private use, unassigned, line and paragraph
# separators, and every space but the plain one (U+00A0, U+2007, U+3000...). They
# look like nothing, or like a plain space, and one typed differently fails to log in.
_UNSEEN_CATEGORIES = ('Cc', 'Cf', 'Cs', 'Co', 'Cn', 'Zl', 'Zp')


def _unseen(char):
    category = unicodedata.category(char)
    return category in _UNSEEN_CATEGORIES or (category == 'Zs' and char != ' ')


def mail_password_text(password):
    """The password as it is checked, hashed and verified: NFC ("ệ" typed as one
    character or as "e" and two marks is the same password). A plain function."""
    return unicodedata.normalize('NFC', password)


def mail_password_length(password):
    """User-perceived characters of a password, after NFC: a letter and the
    combining marks after it count once (a mark at the very start counts too)."""
    text = mail_password_text(password)
    return sum(1 for i, c in enumerate(text) if i == 0 or not unicodedata.category(c).startswith('M'))


# Dovecot scheme -> how the hash after the prefix starts.
SCHEME_IDENTS = {
    'SHA512-CRYPT': '$6$',
    'BLF-CRYPT': '$2',
    'ARGON2ID': '$argon2id$',
}

# Memory for ARGON2ID: libsodium's "interactive" limit, which Dovecot 2.3 uses itself.
ARGON2_MEMORY_KIB = 65536

# Below this many passwords, starting processes costs more than it saves.
PARALLEL_THRESHOLD = 200

# Salt alphabets: crypt(3)'s for SHA512-CRYPT, bcrypt's own for BLF-CRYPT.
_HASH64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
_BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'


# --- The numbers (roles/regulation/defaults/main.yml) -----------------------

def _checked_policy(filter_name, policy):
    if policy is None:
        policy = regulation.default(filter_name, 'regulation_password_policy')
    if not isinstance(policy, Mapping):
        raise RuleError('%s: the password policy must be a mapping' % filter_name)
    for key in ('min_length', 'required_classes', 'history', 'reject_login_name'):
        if key not in policy:
            raise RuleError('%s: the password policy has no %r' % (filter_name, key))
    unknown = [c for c in policy['required_classes'] if c not in CHARACTER_CLASSES]
    if unknown:
        raise RuleError('%s: unknown character classes %s (valid: %s)'
                        % (filter_name, unknown, ', '.join(CHARACTER_CLASSES)))
    return policy


# --- The rules (Điều 4.1, 4.2) ----------------------------------------------

def _login_localpart(login):
    login = login.strip()
    return login.rpartition('@')[0] if '@' in login else login


def _contains_login(password, login):
    """Case does not matter, nor do diacritics: "Lông" contains "long"."""
    localpart = _login_localpart(login).casefold()
    if not localpart:
        return False
    if localpart in password.casefold():
        return True
    return _vn_ascii(localpart).casefold() in _vn_ascii(password).casefold()


def mail_password_errors(password, role='user', login=None, previous=None, policy=None):
    """The rules of Điều 4.1 and 4.2 that a password breaks; [] when it is acceptable."""
    name = 'mail_password_errors'
    policy = _checked_policy(name, policy)
    if role not in policy['min_length']:
        raise RuleError('%s: unknown role %r (valid: %s)'
                        % (name, role, ', '.join(sorted(policy['min_length']))))
    if login is not None and not isinstance(login, str):
        raise RuleError('%s: login must be a text string' % name)
    if not isinstance(password, str):
        return [MSG_NOT_TEXT]
    text = mail_password_text(password)  # "ệ" is one character, however typed
    errors = []
    if any(_unseen(c) for c in text):
        errors.append(MSG_UNSEEN)
    if text != text.strip(' '):
        errors.append(MSG_EDGE_SPACE)

    # Điều 4.1: at least min_length characters (as a reader counts them), more for administrators.
    length = policy['min_length'][role]
    if mail_password_length(text) < length:
        errors.append(MSG_TOO_SHORT.format(length=length, role=role))

    # Điều 4.1: lower case, upper case, digits and special characters.
    for character_class in policy['required_classes']:
        if not any(CHARACTER_CLASSES[character_class](c) for c in text):
            errors.append(MSG_MISSING_CLASS[character_class])

    # Điều 4.2 (2025): not the login name, nor containing it.
    if policy['reject_login_name'] and login and _contains_login(text, login):
        errors.append(MSG_LOGIN)

    # Điều 4.2 (2025): not one of the last `history` passwords (oldest first in `previous`).
    if _reused(name, password, previous, policy):
        errors.append(MSG_REUSED.format(history=int(policy['history'])))
    return errors


def _reused(filter_name, password, previous, policy):
    history = int(policy['history'])
    if not previous or history <= 0:
        return False
    return any(_verify(filter_name, password, stored) for stored in list(previous)[-history:])


def mail_password_reused(password, previous, policy=None):
    """True when `password` is one of the last policy.history passwords; `previous` holds
    their stored hashes, oldest first (Điều 4.2, 2025 text)."""
    name = 'mail_password_reused'
    return _reused(name, password, previous, _checked_policy(name, policy))


# --- Hashing for Dovecot ----------------------------------------------------

def _scheme_name(filter_name, scheme):
    name = str(scheme).strip().strip('{}').upper()
    if name not in SCHEME_IDENTS:
        raise RuleError('%s: unknown scheme %r (valid: %s)'
                        % (filter_name, scheme, ', '.join(SCHEME_IDENTS)))
    return name


def _hash_settings(filter_name, scheme, rounds):
    """Scheme and rounds: given ones, else those of regulation_password_hash."""
    settings = {}
    if scheme is None or rounds is None:
        settings = regulation.default(filter_name, 'regulation_password_hash')
    scheme = _scheme_name(filter_name, scheme if scheme is not None else settings.get('scheme'))
    if rounds is None:
        configured = settings.get('rounds')
        if isinstance(configured, Mapping):  # rounds per scheme
            rounds = configured.get(scheme)
        elif settings.get('scheme') and _scheme_name(filter_name, settings['scheme']) == scheme:
            rounds = configured
        if rounds is None:
            raise RuleError('%s: no rounds configured for %s; pass rounds=, or make '
                            'regulation_password_hash.rounds a mapping per scheme' % (filter_name, scheme))
    if isinstance(rounds, bool) or not str(rounds).isdigit() or int(rounds) < 1:
        raise RuleError('%s: rounds must be a positive whole number, got %r' % (filter_name, rounds))
    return scheme, int(rounds)


def _salt_bytes(salt_from, password):
    """HMAC-SHA256(key=salt_from, msg=password): the same account and password give the
    same salt, another account another salt. Without salt_from: random."""
    if salt_from is None:
        return os.urandom(32)
    return hmac.new(str(salt_from).encode('utf-8'), password.encode('utf-8'), hashlib.sha256).digest()


def _passlib(filter_name, handler):
    if passlib_hash is None:
        raise RuleError('%s: needs the Python library passlib (Debian: python3-passlib, pip: libpass)'
                        % filter_name)
    return getattr(passlib_hash, handler)


def _hash_sha512_crypt(password, rounds, raw_salt, memory_kib):
    salt = ''.join(_HASH64[b % 64] for b in raw_salt[:16])
    setting = '$6$rounds=%d$%s' % (rounds, salt)
    if _crypt is not None:
        try:
            hashed = _crypt.crypt(password, setting)
        except ValueError:  # e.g. a NUL character: passlib says what is wrong
            hashed = None
        if hashed and hashed.startswith(setting + '$'):  # else rounds out of range: passlib says so
            return hashed
    hashed = _passlib('mail_password_hash', 'sha512_crypt').using(salt=salt, rounds=rounds).hash(password)
    # passlib leaves "rounds=5000" out (the implied value); crypt(3) writes it: do the same.
    return hashed if hashed.startswith('$6$rounds=') else '$6$rounds=%d$%s' % (rounds, hashed[3:])


def _hash_blf_crypt(password, rounds, raw_salt, memory_kib):
    # 22 characters; the last one carries only 2 bits (".Oeu"), the rest must be zero.
    salt = ''.join(_BCRYPT64[b % 64] for b in raw_salt[:21]) + _BCRYPT64[(raw_salt[21] % 4) * 16]
    # bcrypt reads at most 72 bytes; Dovecot's crypt_blowfish ignores the rest, so do we.
    secret = password.encode('utf-8')[:72]
    handler = _passlib('mail_password_hash', 'bcrypt')
    return handler.using(ident='2y', rounds=rounds, salt=salt).hash(secret)


def _hash_argon2id(password, rounds, raw_salt, memory_kib):
    # parallelism 1: what libsodium (Dovecot's ARGON2ID) makes itself.
    handler = _passlib('mail_password_hash', 'argon2')
    return handler.using(type='id', rounds=rounds, memory_cost=memory_kib or ARGON2_MEMORY_KIB,
                         parallelism=1, salt=raw_salt[:16]).hash(password)


_HASHERS = {
    'SHA512-CRYPT': _hash_sha512_crypt,
    'BLF-CRYPT': _hash_blf_crypt,
    'ARGON2ID': _hash_argon2id,
}


def _hash_one(job):
    """One hash; job = (password, scheme, rounds, salt_from, memory_kib).

    Top level so that worker processes can run it."""
    password, scheme, rounds, salt_from, memory_kib = job
    try:
        hashed = _HASHERS[scheme](password, rounds, _salt_bytes(salt_from, password), memory_kib)
    except RuleError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # bad rounds, missing backend...
        raise RuleError('mail_password_hash: cannot make a %s hash: %s: %s'
                        % (scheme, type(exc).__name__, exc)) from None
    return '{%s}%s' % (scheme, hashed)


def mail_password_hash(password, scheme=None, rounds=None, salt_from=None, memory_kib=None):
    """A hash Dovecot accepts, with its scheme prefix: "{SHA512-CRYPT}$6$rounds=5000$..."."""
    name = 'mail_password_hash'
    if not isinstance(password, str):
        raise RuleError('%s: the password must be a text string' % name)
    scheme, rounds = _hash_settings(name, scheme, rounds)
    return _hash_one((mail_password_text(str(password)), scheme, rounds, salt_from, memory_kib))


def _job(index, item, scheme, rounds, memory_kib):
    if isinstance(item, Mapping):
        salt_from, password = item.get('id'), item.get('password')
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        salt_from, password = item
    else:
        raise RuleError('mail_password_hash_many: item %d is not a (salt_from, password) pair '
                        'nor a dict with id and password' % index)
    if not isinstance(password, str):
        raise RuleError('mail_password_hash_many: the password of item %d is not a text string' % index)
    # Plain str and int, so that they pass to worker processes whatever Ansible wrapped them in.
    salt_from = None if salt_from is None else str(salt_from)
    return mail_password_text(str(password)), scheme, rounds, salt_from, memory_kib


def mail_password_hash_many(items, scheme=None, rounds=None, memory_kib=None):
    """mail_password_hash for many (salt_from, password) pairs, in order, using all CPUs."""
    scheme, rounds = _hash_settings('mail_password_hash_many', scheme, rounds)
    jobs = [_job(i, item, scheme, rounds, memory_kib) for i, item in enumerate(items or [])]
    workers = os.cpu_count() or 1
    if len(jobs) <= PARALLEL_THRESHOLD or workers < 2 or 'fork' not in multiprocessing.get_all_start_methods():
        return [_hash_one(job) for job in jobs]
    # The first hash here: a wrong setting fails with a clear message before processes start.
    first = _hash_one(jobs[0])
    # "fork": the workers inherit this module as it is loaded, whatever ran it.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('fork')) as pool:
        rest = pool.map(_hash_one, jobs[1:], chunksize=max(1, len(jobs) // (workers * 4)))
        return [first] + list(rest)


# --- Verifying ----------------------------------------------------------------

def _split_stored(filter_name, stored_hash):
    if not isinstance(stored_hash, str):
        raise RuleError('%s: a stored hash must be a text string' % filter_name)
    match = re.match(r'^\{([A-Za-z0-9.-]+)\}(.*)$', stored_hash.strip())
    if not match:
        raise RuleError('%s: a stored hash has no {SCHEME} prefix' % filter_name)
    scheme, hashed = match.group(1).upper(), match.group(2)
    if scheme not in SCHEME_IDENTS:
        raise RuleError('%s: unknown scheme {%s} (valid: %s)'
                        % (filter_name, scheme, ', '.join(SCHEME_IDENTS)))
    if not hashed.startswith(SCHEME_IDENTS[scheme]):
        raise RuleError('%s: a stored {%s} hash does not start with %s'
                        % (filter_name, scheme, SCHEME_IDENTS[scheme]))
    return scheme, hashed


def _verify(filter_name, password, stored_hash):
    """The NFC password is what is stored (mail_password_hash); a hash stored
    before from another form of the same text still matches as typed then."""
    scheme, hashed = _split_stored(filter_name, stored_hash)
    if not isinstance(password, str):
        return False
    text = mail_password_text(password)
    return _verify_one(filter_name, text, scheme, hashed) or (
        text != password and _verify_one(filter_name, password, scheme, hashed))


def _verify_one(filter_name, password, scheme, hashed):
    try:
        if scheme == 'SHA512-CRYPT':
            if _crypt is not None and '\0' not in password:
                computed = _crypt.crypt(password, hashed)
                if computed and computed.startswith('$6$'):
                    return hmac.compare_digest(computed, hashed)
            return _passlib(filter_name, 'sha512_crypt').verify(password, hashed)
        if scheme == 'BLF-CRYPT':
            return _passlib(filter_name, 'bcrypt').verify(password.encode('utf-8')[:72], hashed)
        return _passlib(filter_name, 'argon2').verify(password, hashed)
    except PasswordValueError:  # a password the scheme refuses (NUL, too long) was never stored
        return False
    except RuleError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # malformed hash, missing backend...
        raise RuleError('%s: cannot check a {%s} hash: %s: %s'
                        % (filter_name, scheme, type(exc).__name__, exc)) from None


def mail_password_verify(password, stored_hash):
    """True when `password` matches `stored_hash` ("{SCHEME}..." as Dovecot stores it)."""
    return _verify('mail_password_verify', password, stored_hash)
