# Password rules of the "công vụ" e-mail regulation (Điều 4.1, 4.2) and the
# password hashes Dovecot 2.3 stores.
#
# This file is an Ansible filter plugin, and also a plain Python module: the
# server-side password-change service imports it directly (copy mail_address.py
# beside it, and pass the policy and the hash settings explicitly there).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_password
  short_description: Check passwords against the regulation and hash them for Dovecot
  description:
    - C(mail_password_errors(password, role='user', login=None, previous=None, policy=None))
      lists the rules of Điều 4.1 and 4.2 a password breaks (empty when it is acceptable);
      no message ever contains the password.
    - C(mail_password_hash(password, scheme=None, rounds=None, salt_from=None)) returns a
      hash with its Dovecot scheme prefix (C({SHA512-CRYPT}), C({BLF-CRYPT}),
      C({ARGON2ID})). With O(salt_from) the salt is derived from it and the password, so
      hashing the same password for the same account again gives the same hash.
    - C(mail_password_hash_many(items, scheme=None, rounds=None)) hashes many passwords,
      in several processes when there are many.
    - C(mail_password_verify(password, stored_hash)) tells whether a password matches a
      stored hash.
    - Every password is NFC-normalised before it is checked, hashed or verified, so
      what is checked is what is stored. Its length counts user-perceived characters
      (a letter and its combining marks once). Control, invisible and unusual space
      characters (U+200B, U+00A0...) are refused, and so is a space at either end;
      "special" means punctuation or a symbol.
    - C(mail_password_reused(password, previous, policy=None)) tells whether a password is
      one of the last C(policy.history) ones (O(previous), stored hashes, oldest first).
    - C(mail_password_expires(set_at, role='user', max_age_days=None)) is when a password
      set at O(set_at) expires (C(regulation_password_max_age_days)); a plain function for
      the server-side jobs, not a filter.
    - The numbers come from C(regulation_password_policy) and C(regulation_password_hash)
      (roles/regulation/defaults/main.yml). In a playbook, pass
      O(policy)=C(regulation_password_policy) so that inventory overrides apply; without
      it the role defaults are read from that file.
  positional: _input
  options:
    _input:
      description: The password (for mail_password_hash_many, the list of items).
      type: raw
      required: true
    role:
      description: mail_password_errors only. A key of C(policy.min_length), such as
        C(user) or C(admin).
      type: str
      default: user
    login:
      description: mail_password_errors only. The login, a full address or a local part.
      type: str
    previous:
      description: mail_password_errors only. The stored hashes of earlier passwords,
        oldest first, with their Dovecot scheme prefix; the last C(policy.history) count.
      type: list
      elements: str
    policy:
      description: mail_password_errors only. The password policy, shaped like
        C(regulation_password_policy).
      type: dict
    scheme:
      description: C(SHA512-CRYPT), C(BLF-CRYPT) or C(ARGON2ID); default
        C(regulation_password_hash.scheme).
      type: str
    rounds:
      description:
        - The cost (SHA512-CRYPT rounds, BLF-CRYPT cost, ARGON2ID time cost); default
          C(regulation_password_hash.rounds) for the configured scheme.
        - C(regulation_password_hash.rounds) may also be a mapping, scheme to rounds.
      type: int
    memory_kib:
      description: ARGON2ID only, the memory cost in KiB.
      type: int
      default: 65536
    salt_from:
      description: mail_password_hash only. The account (its id or address) the password
        belongs to. Without it the salt is random and every run gives a new hash.
      type: str
"""

EXAMPLES = r"""
problems: >-
  {{ new_password | mail_password_errors(role='admin', login='longnv@bacninh.gov.vn',
                                         previous=stored_hashes,
                                         policy=regulation_password_policy) }}
# => ['shorter than 10 characters (Điều 4.1, admin)', 'has no digit (Điều 4.1)']

stored: "{{ initial_password | mail_password_hash(salt_from='longnv@bacninh.gov.vn') }}"
# => '{SHA512-CRYPT}$6$rounds=5000$...' (the same on every run)

stored_all: >-
  {{ accounts | map(attribute='address') | zip(accounts | map(attribute='password'))
     | mail_password_hash_many }}

matches: "{{ typed_password | mail_password_verify(stored) }}"
# => true
"""

RETURN = r"""
  _value:
    description:
      - mail_password_errors - a list of strings, empty when the password is acceptable.
      - mail_password_hash - a string, the hash with its scheme prefix.
      - mail_password_hash_many - a list of such strings, in the order of the items.
      - mail_password_verify - a boolean.
    type: raw
"""

import datetime
import hashlib
import hmac
import importlib.util
import multiprocessing
import os
import re
import unicodedata
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # used without Ansible (server-side password change)
    class AnsibleFilterError(ValueError):
        """Raised when a filter cannot do what it is asked."""

try:
    import yaml
except ImportError:
    yaml = None

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


DEFAULTS_FILE = Path(__file__).resolve().parent.parent / 'roles' / 'regulation' / 'defaults' / 'main.yml'

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

@lru_cache(maxsize=None)
def _read_defaults(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


def _regulation_default(filter_name, key):
    """A value of the regulation role's defaults, for callers that pass none."""
    if not DEFAULTS_FILE.is_file():
        raise AnsibleFilterError('%s: no %s given, and %s is not there to read it from; pass it explicitly'
                                 % (filter_name, key, DEFAULTS_FILE))
    if yaml is None:
        raise AnsibleFilterError('%s: reading %s needs the Python library PyYAML (or pass %s explicitly)'
                                 % (filter_name, DEFAULTS_FILE, key))
    defaults = _read_defaults(str(DEFAULTS_FILE))
    if key not in defaults:
        raise AnsibleFilterError('%s: %s has no %s' % (filter_name, DEFAULTS_FILE, key))
    return defaults[key]


def _checked_policy(filter_name, policy):
    if policy is None:
        policy = _regulation_default(filter_name, 'regulation_password_policy')
    if not isinstance(policy, Mapping):
        raise AnsibleFilterError('%s: the password policy must be a mapping' % filter_name)
    for key in ('min_length', 'required_classes', 'history', 'reject_login_name'):
        if key not in policy:
            raise AnsibleFilterError('%s: the password policy has no %r' % (filter_name, key))
    unknown = [c for c in policy['required_classes'] if c not in CHARACTER_CLASSES]
    if unknown:
        raise AnsibleFilterError('%s: unknown character classes %s (valid: %s)'
                                 % (filter_name, unknown, ', '.join(CHARACTER_CLASSES)))
    return policy


# --- vn_ascii, from mail_address.py (a rule lives in one place) --------------

def _load_vn_ascii():
    """vn_ascii from the mail_address.py beside this file.

    Ansible loads filter plugins under its own module names, so "import mail_address"
    works only where filter_plugins/ is on sys.path (tests, the password service);
    otherwise the sibling file is loaded by its path.
    """
    sibling = Path(__file__).resolve().with_name('mail_address.py')
    try:
        import mail_address
        if Path(getattr(mail_address, '__file__', '') or '.').resolve() == sibling:
            return mail_address.vn_ascii
    except ImportError:
        pass
    if not sibling.is_file():
        return None
    spec = importlib.util.spec_from_file_location('congvu_mail_address', sibling)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.vn_ascii


_vn_ascii = _load_vn_ascii()


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
    if _vn_ascii is None:
        raise AnsibleFilterError('mail_password_errors: the login rule needs mail_address.py beside %s'
                                 % Path(__file__).name)
    return _vn_ascii(localpart).casefold() in _vn_ascii(password).casefold()


def mail_password_errors(password, role='user', login=None, previous=None, policy=None):
    """The rules of Điều 4.1 and 4.2 that a password breaks; [] when it is acceptable."""
    name = 'mail_password_errors'
    policy = _checked_policy(name, policy)
    if role not in policy['min_length']:
        raise AnsibleFilterError('%s: unknown role %r (valid: %s)'
                                 % (name, role, ', '.join(sorted(policy['min_length']))))
    if login is not None and not isinstance(login, str):
        raise AnsibleFilterError('%s: login must be a text string' % name)
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


# --- Password age (Điều 4.2) ----------------------------------------------------

def mail_password_expires(set_at, role='user', max_age_days=None):
    """When a password set at `set_at` (a datetime) expires for `role`: set_at plus
    max_age_days[role] days (regulation_password_max_age_days). None when it was
    never set."""
    name = 'mail_password_expires'
    if max_age_days is None:
        max_age_days = _regulation_default(name, 'regulation_password_max_age_days')
    if not isinstance(max_age_days, Mapping) or role not in max_age_days:
        raise AnsibleFilterError('%s: no maximum password age for role %r' % (name, role))
    if set_at is None:
        return None
    if not isinstance(set_at, datetime.datetime):
        raise AnsibleFilterError('%s: set_at must be a datetime' % name)
    return set_at + datetime.timedelta(days=int(max_age_days[role]))


# --- Hashing for Dovecot ----------------------------------------------------

def _scheme_name(filter_name, scheme):
    name = str(scheme).strip().strip('{}').upper()
    if name not in SCHEME_IDENTS:
        raise AnsibleFilterError('%s: unknown scheme %r (valid: %s)'
                                 % (filter_name, scheme, ', '.join(SCHEME_IDENTS)))
    return name


def _hash_settings(filter_name, scheme, rounds):
    """Scheme and rounds: given ones, else those of regulation_password_hash."""
    settings = {}
    if scheme is None or rounds is None:
        settings = _regulation_default(filter_name, 'regulation_password_hash')
    scheme = _scheme_name(filter_name, scheme if scheme is not None else settings.get('scheme'))
    if rounds is None:
        configured = settings.get('rounds')
        if isinstance(configured, Mapping):  # rounds per scheme
            rounds = configured.get(scheme)
        elif settings.get('scheme') and _scheme_name(filter_name, settings['scheme']) == scheme:
            rounds = configured
        if rounds is None:
            raise AnsibleFilterError('%s: no rounds configured for %s; pass rounds=, or make '
                                     'regulation_password_hash.rounds a mapping per scheme' % (filter_name, scheme))
    if isinstance(rounds, bool) or not str(rounds).isdigit() or int(rounds) < 1:
        raise AnsibleFilterError('%s: rounds must be a positive whole number, got %r' % (filter_name, rounds))
    return scheme, int(rounds)


def _salt_bytes(salt_from, password):
    """HMAC-SHA256(key=salt_from, msg=password): the same account and password give the
    same salt, another account another salt. Without salt_from: random."""
    if salt_from is None:
        return os.urandom(32)
    return hmac.new(str(salt_from).encode('utf-8'), password.encode('utf-8'), hashlib.sha256).digest()


def _passlib(filter_name, handler):
    if passlib_hash is None:
        raise AnsibleFilterError('%s: needs the Python library passlib (Debian: python3-passlib, pip: libpass)'
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
    except AnsibleFilterError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # bad rounds, missing backend...
        raise AnsibleFilterError('mail_password_hash: cannot make a %s hash: %s: %s'
                                 % (scheme, type(exc).__name__, exc)) from None
    return '{%s}%s' % (scheme, hashed)


def mail_password_hash(password, scheme=None, rounds=None, salt_from=None, memory_kib=None):
    """A hash Dovecot accepts, with its scheme prefix: "{SHA512-CRYPT}$6$rounds=5000$..."."""
    name = 'mail_password_hash'
    if not isinstance(password, str):
        raise AnsibleFilterError('%s: the password must be a text string' % name)
    scheme, rounds = _hash_settings(name, scheme, rounds)
    return _hash_one((mail_password_text(str(password)), scheme, rounds, salt_from, memory_kib))


def _job(index, item, scheme, rounds, memory_kib):
    if isinstance(item, Mapping):
        salt_from, password = item.get('id'), item.get('password')
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        salt_from, password = item
    else:
        raise AnsibleFilterError('mail_password_hash_many: item %d is not a (salt_from, password) pair '
                                 'nor a dict with id and password' % index)
    if not isinstance(password, str):
        raise AnsibleFilterError('mail_password_hash_many: the password of item %d is not a text string' % index)
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
    # "fork": the workers inherit this module even when Ansible loaded it under its own name.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context('fork')) as pool:
        rest = pool.map(_hash_one, jobs[1:], chunksize=max(1, len(jobs) // (workers * 4)))
        return [first] + list(rest)


# --- Verifying ----------------------------------------------------------------

def _split_stored(filter_name, stored_hash):
    if not isinstance(stored_hash, str):
        raise AnsibleFilterError('%s: a stored hash must be a text string' % filter_name)
    match = re.match(r'^\{([A-Za-z0-9.-]+)\}(.*)$', stored_hash.strip())
    if not match:
        raise AnsibleFilterError('%s: a stored hash has no {SCHEME} prefix' % filter_name)
    scheme, hashed = match.group(1).upper(), match.group(2)
    if scheme not in SCHEME_IDENTS:
        raise AnsibleFilterError('%s: unknown scheme {%s} (valid: %s)'
                                 % (filter_name, scheme, ', '.join(SCHEME_IDENTS)))
    if not hashed.startswith(SCHEME_IDENTS[scheme]):
        raise AnsibleFilterError('%s: a stored {%s} hash does not start with %s'
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
    except AnsibleFilterError:
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # malformed hash, missing backend...
        raise AnsibleFilterError('%s: cannot check a {%s} hash: %s: %s'
                                 % (filter_name, scheme, type(exc).__name__, exc)) from None


def mail_password_verify(password, stored_hash):
    """True when `password` matches `stored_hash` ("{SCHEME}..." as Dovecot stores it)."""
    return _verify('mail_password_verify', password, stored_hash)


class FilterModule(object):
    """Password rules of the regulation (Điều 4.1, 4.2) and Dovecot hashes."""

    def filters(self):
        return {
            'mail_password_errors': mail_password_errors,
            'mail_password_hash': mail_password_hash,
            'mail_password_hash_many': mail_password_hash_many,
            'mail_password_reused': mail_password_reused,
            'mail_password_verify': mail_password_verify,
        }
