"""Password rules (Điều 4.1, 4.2) and Dovecot hashes: filter_plugins/mail_password.py.

The numbers come from roles/regulation/defaults/main.yml (fixtures in conftest.py);
the tests never repeat them.
"""

import random
import subprocess
import sys
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from passlib.hash import argon2, bcrypt, sha512_crypt

from congvu_mail import password as mail_password, regulation
from congvu_mail.password import (
    MSG_LOGIN,
    MSG_MISSING_CLASS,
    MSG_NOT_TEXT,
    MSG_EDGE_SPACE,
    MSG_REUSED,
    MSG_TOO_SHORT,
    MSG_UNSEEN,
    mail_password_errors,
    mail_password_hash,
    mail_password_hash_many,
    mail_password_verify,
)
from congvu_mail.errors import RuleError

LOWER = 'abcdefghijklmnopqrstuvwxyzăâđêôơư'
UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZĂÂĐÊÔƠƯ'
DIGITS = '0123456789'
SPECIAL = '!@#$%^&*()-_=+[]{};:,.<>/?~'  # a space is not special
CLASS_CHARACTERS = {'lower': LOWER, 'upper': UPPER, 'digit': DIGITS, 'special': SPECIAL}

# Cheap settings for the slow schemes, so that the tests stay fast.
CHEAP = {
    'SHA512-CRYPT': dict(scheme='SHA512-CRYPT', rounds=1000),
    'BLF-CRYPT': dict(scheme='BLF-CRYPT', rounds=4),
    'ARGON2ID': dict(scheme='ARGON2ID', rounds=1, memory_kib=256),
}
PASSLIB_HANDLERS = {'SHA512-CRYPT': sha512_crypt, 'BLF-CRYPT': bcrypt, 'ARGON2ID': argon2}


def longest(policy):
    return max(policy['min_length'].values())


def compliant(policy, length=None):
    """A password that breaks no rule: every class, long enough for any role."""
    base = 'Qx7!'
    return base + 'w' * ((length or longest(policy)) - len(base))


def all_messages(policy):
    """Every message mail_password_errors can give under `policy`."""
    messages = {MSG_NOT_TEXT, MSG_LOGIN, MSG_REUSED.format(history=policy['history']), MSG_UNSEEN, MSG_EDGE_SPACE}
    messages |= {MSG_TOO_SHORT.format(length=n, role=r) for r, n in policy['min_length'].items()}
    messages |= set(MSG_MISSING_CLASS.values())
    return messages


# --- The defaults are the regulation's ----------------------------------------------

def test_defaults_hold_what_the_tests_rely_on(policy):
    assert set(policy['required_classes']) == set(CLASS_CHARACTERS)
    assert policy['min_length']['admin'] > policy['min_length']['user']
    assert policy['history'] >= 1
    assert policy['reject_login_name'] is True


def test_policy_defaults_are_read_from_the_role(policy):
    password = compliant(policy)
    assert mail_password_errors(password) == mail_password_errors(password, policy=policy) == []
    short = password[:policy['min_length']['user'] - 1]
    assert mail_password_errors(short) == [MSG_TOO_SHORT.format(length=policy['min_length']['user'], role='user')]


# --- Each rule on its own -------------------------------------------------------------

def test_compliant_password_passes(policy):
    for role in policy['min_length']:
        assert mail_password_errors(compliant(policy), role=role, login='longnv', policy=policy) == []


@pytest.mark.parametrize('role', ['user', 'admin'])
def test_length_alone(policy, role):
    length = policy['min_length'][role]
    assert mail_password_errors(compliant(policy, length), role=role, policy=policy) == []
    assert mail_password_errors(compliant(policy, length)[:-1], role=role, policy=policy) == [
        MSG_TOO_SHORT.format(length=length, role=role)]


def test_admin_needs_more_than_user(policy):
    password = compliant(policy, policy['min_length']['user'])
    assert mail_password_errors(password, role='user', policy=policy) == []
    errors = mail_password_errors(password, role='admin', policy=policy)
    assert errors == [MSG_TOO_SHORT.format(length=policy['min_length']['admin'], role='admin')]
    assert 'admin' in errors[0] and str(policy['min_length']['admin']) in errors[0]


@st.composite
def compliant_passwords(draw, length):
    chars = [draw(st.sampled_from(alphabet)) for alphabet in CLASS_CHARACTERS.values()]
    every = ''.join(CLASS_CHARACTERS.values())
    chars += draw(st.lists(st.sampled_from(every), min_size=max(0, length - len(chars)), max_size=length + 8))
    return ''.join(draw(st.permutations(chars)))


@settings(max_examples=50)
@given(st.data(), st.sampled_from(sorted(CLASS_CHARACTERS)))
def test_each_class_alone(policy, data, missing):
    password = data.draw(compliant_passwords(longest(policy)))
    assert mail_password_errors(password, role='admin', login='zzqqzz', policy=policy) == []
    # Replace every character of the missing class by one of another class: same length.
    other = CLASS_CHARACTERS['special' if missing != 'special' else 'digit']
    broken = ''.join(random.Random(0).choice(other) if c in CLASS_CHARACTERS[missing] else c for c in password)
    assert mail_password_errors(broken, role='admin', login='zzqqzz', policy=policy) == [MSG_MISSING_CLASS[missing]]


def test_classes_follow_the_policy(policy):
    relaxed = dict(policy, required_classes=['lower', 'digit'])
    assert mail_password_errors('w' * longest(policy) + '1', policy=relaxed) == []


@pytest.mark.parametrize('password', [
    'xLongNV#2024', 'LONGNV!x2024a', 'x!1A longnv', 'Lôngnv#2024x', 'LÔNGNV@2024x'])
@pytest.mark.parametrize('login', ['longnv', 'LongNV', 'longnv@bacgiang.gov.vn', 'LONGNV@BACGIANG.GOV.VN'])
def test_login_name_alone(policy, password, login):
    assert mail_password_errors(password, login=login, policy=policy) == [MSG_LOGIN]


def test_login_name_equal(policy):
    login = 'Longnv2024!Xy'   # a login can be a compliant password
    assert mail_password_errors(login.lower(), login=login, policy=policy) == [
        MSG_MISSING_CLASS['upper'], MSG_LOGIN]
    assert mail_password_errors(login, login=login + '@bacgiang.gov.vn', policy=policy) == [MSG_LOGIN]


def test_login_domain_does_not_count(policy):
    assert mail_password_errors('Bacgiang#2024x', login='longnv@bacgiang.gov.vn', policy=policy) == []


def test_login_rule_can_be_turned_off(policy):
    relaxed = dict(policy, reject_login_name=False)
    assert mail_password_errors('xLongNV#2024', login='longnv', policy=relaxed) == []


# --- History --------------------------------------------------------------------------

@pytest.mark.parametrize('scheme', sorted(CHEAP))
def test_history_last_n_rejected_older_allowed(policy, scheme):
    n = policy['history']
    passwords = ['Old%d#Pass-word' % i for i in range(n + 1)]       # oldest first
    previous = [mail_password_hash(p, salt_from='longnv', **CHEAP[scheme]) for p in passwords]
    assert mail_password_errors(passwords[0], previous=previous, policy=policy) == []
    for password in passwords[1:]:
        assert mail_password_errors(password, previous=previous, policy=policy) == [
            MSG_REUSED.format(history=n)]
    assert mail_password_errors('Brand#New-word1', previous=previous, policy=policy) == []


def test_history_mixed_schemes_and_policy_length(policy):
    previous = [mail_password_hash('Old%d#Pass-word' % i, **CHEAP[s]) for i, s in enumerate(sorted(CHEAP))]
    short_memory = dict(policy, history=1)
    assert mail_password_errors('Old0#Pass-word', previous=previous, policy=short_memory) == []
    assert mail_password_errors('Old2#Pass-word', previous=previous, policy=short_memory) == [
        MSG_REUSED.format(history=1)]
    assert mail_password_errors('Old2#Pass-word', previous=previous, policy=dict(policy, history=0)) == []


def test_history_with_unknown_scheme_raises(policy):
    with pytest.raises(RuleError, match='mail_password_errors'):
        mail_password_errors(compliant(policy), previous=['{PLAIN}secret'], policy=policy)


# --- What the messages never show -----------------------------------------------------

PREVIOUS_HASH = mail_password_hash('Old0#Pass-word', scheme='SHA512-CRYPT', rounds=1000)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=4, max_size=40), st.sampled_from(['user', 'admin']))
def test_errors_never_contain_the_password(policy, password, role):
    previous = [PREVIOUS_HASH]
    errors = mail_password_errors(password, role=role, login='longnv@bacgiang.gov.vn',
                                  previous=previous, policy=policy)
    catalogue = all_messages(policy)
    assert set(errors) <= catalogue            # fixed texts: nothing taken from the input
    assume(not any(password in message for message in catalogue))
    assert not any(password in error for error in errors)



@pytest.mark.parametrize('value', [None, 12345678, b'Qx7!wwwwww', ['Qx7!wwwwww']])
def test_non_text_password_is_one_error(policy, value):
    assert mail_password_errors(value, policy=policy) == [MSG_NOT_TEXT]


def test_unknown_role_raises(policy):
    with pytest.raises(RuleError, match="mail_password_errors.*'root'"):
        mail_password_errors(compliant(policy), role='root', policy=policy)


def test_incomplete_policy_raises(policy):
    with pytest.raises(RuleError, match='history'):
        mail_password_errors('x', policy={k: v for k, v in policy.items() if k != 'history'})
    with pytest.raises(RuleError, match='unknown character classes'):
        mail_password_errors('x', policy=dict(policy, required_classes=['emoji']))


def test_missing_defaults_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(regulation, 'DEFAULTS_FILE', tmp_path / 'absent.yml')
    with pytest.raises(RuleError, match='pass it explicitly'):
        mail_password_errors('Qx7!wwwwwwww')
    with pytest.raises(RuleError, match='pass it explicitly'):
        mail_password_hash('Qx7!wwwwwwww')
    assert mail_password_hash('Qx7!wwwwwwww', scheme='SHA512-CRYPT', rounds=1000)


# --- Hashing ----------------------------------------------------------------------------

def test_default_hash_follows_the_role(hash_settings):
    stored = mail_password_hash('Qx7!wwwwwwww', salt_from='longnv@bacgiang.gov.vn')
    assert stored.startswith('{%s}' % hash_settings['scheme'])
    assert 'rounds=%d$' % hash_settings['rounds'] in stored
    assert mail_password_verify('Qx7!wwwwwwww', stored)


@pytest.mark.parametrize('scheme, ident', [
    ('SHA512-CRYPT', '$6$rounds=1000$'), ('BLF-CRYPT', '$2y$04$'), ('ARGON2ID', '$argon2id$v=19$m=256,t=1,p=1$')])
def test_hash_formats_dovecot_accepts(scheme, ident):
    stored = mail_password_hash('Qx7!wwwwwwww', **CHEAP[scheme])
    assert stored.startswith('{%s}%s' % (scheme, ident))
    assert PASSLIB_HANDLERS[scheme].verify('Qx7!wwwwwwww', stored[len(scheme) + 2:])
    assert mail_password_verify('Qx7!wwwwwwww', stored)
    assert not mail_password_verify('Qx7!wwwwwwwW', stored)


@settings(max_examples=15, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda s: '\0' not in s), st.sampled_from(sorted(CHEAP)))
def test_hash_deterministic_per_account_and_verifies(password, scheme):
    cheap = CHEAP[scheme]
    first = mail_password_hash(password, salt_from='longnv@bacgiang.gov.vn', **cheap)
    assert mail_password_hash(password, salt_from='longnv@bacgiang.gov.vn', **cheap) == first
    assert mail_password_hash(password, salt_from='tuyetdta@bacgiang.gov.vn', **cheap) != first
    assert mail_password_verify(password, first)
    body = first[len(scheme) + 2:]
    secret = password.encode('utf-8')[:72] if scheme == 'BLF-CRYPT' else password
    assert PASSLIB_HANDLERS[scheme].verify(secret, body)


def test_random_salt_without_salt_from():
    assert mail_password_hash('Qx7!wwwwwwww', **CHEAP['SHA512-CRYPT']) != \
        mail_password_hash('Qx7!wwwwwwww', **CHEAP['SHA512-CRYPT'])


def test_different_passwords_same_account_differ():
    assert mail_password_hash('Qx7!wwwwwwww', salt_from=1, **CHEAP['SHA512-CRYPT']) != \
        mail_password_hash('Qx7!wwwwwwwx', salt_from=1, **CHEAP['SHA512-CRYPT'])


def test_salt_from_number_equals_text():
    assert mail_password_hash('Qx7!wwwwwwww', salt_from=1001) == mail_password_hash('Qx7!wwwwwwww', salt_from='1001')


@pytest.mark.skipif(mail_password._crypt is None, reason='no crypt module: passlib is the only path')
@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda s: '\0' not in s), st.sampled_from([1000, 5000]))
def test_crypt_and_passlib_give_the_same_sha512_crypt(password, rounds):
    fast = mail_password_hash(password, scheme='SHA512-CRYPT', rounds=rounds, salt_from='x')
    saved = mail_password._crypt
    mail_password._crypt = None
    try:
        slow = mail_password_hash(password, scheme='SHA512-CRYPT', rounds=rounds, salt_from='x')
        assert mail_password_verify(password, fast)
    finally:
        mail_password._crypt = saved
    assert fast == slow


def test_long_bcrypt_passwords_are_cut_like_dovecot_does():
    long_password = 'Qx7!' + 'w' * 100
    stored = mail_password_hash(long_password, salt_from=1, **CHEAP['BLF-CRYPT'])
    assert mail_password_verify(long_password, stored)
    assert mail_password_verify(long_password[:72], stored)


def test_rounds_for_another_scheme_must_be_given(hash_settings):
    other = 'BLF-CRYPT' if hash_settings['scheme'] != 'BLF-CRYPT' else 'SHA512-CRYPT'
    with pytest.raises(RuleError, match='no rounds configured'):
        mail_password_hash('Qx7!wwwwwwww', scheme=other)


def test_rounds_per_scheme_mapping(monkeypatch, tmp_path):
    defaults = tmp_path / 'main.yml'
    defaults.write_text(yaml.safe_dump({'regulation_password_hash': {
        'scheme': 'BLF-CRYPT', 'rounds': {'BLF-CRYPT': 4, 'SHA512-CRYPT': 1000}}}))
    monkeypatch.setattr(regulation, 'DEFAULTS_FILE', defaults)
    assert mail_password_hash('Qx7!wwwwwwww').startswith('{BLF-CRYPT}$2y$04$')
    assert mail_password_hash('Qx7!wwwwwwww', scheme='SHA512-CRYPT').startswith('{SHA512-CRYPT}$6$rounds=1000$')


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(scheme='MD5-CRYPT', rounds=1000), 'unknown scheme'),
    (dict(scheme='SHA512-CRYPT', rounds=0), 'rounds'),
    (dict(scheme='SHA512-CRYPT', rounds='many'), 'rounds'),
    (dict(scheme='SHA512-CRYPT', rounds=10), 'SHA512-CRYPT'),   # below the algorithm's minimum
    (dict(scheme='BLF-CRYPT', rounds=99), 'BLF-CRYPT'),
])
def test_bad_hash_settings_raise(kwargs, fragment):
    with pytest.raises(RuleError, match='mail_password_hash') as caught:
        mail_password_hash('Qx7!wwwwwwww', **kwargs)
    assert fragment in str(caught.value)
    assert 'Qx7!' not in str(caught.value)


def test_hash_of_non_text_raises():
    with pytest.raises(RuleError, match='mail_password_hash'):
        mail_password_hash(None, **CHEAP['SHA512-CRYPT'])


def test_scheme_names_are_forgiving():
    assert mail_password_hash('Qx7!wwwwwwww', scheme='{sha512-crypt}', rounds=1000).startswith('{SHA512-CRYPT}')


# --- Verifying ------------------------------------------------------------------------

@pytest.mark.parametrize('stored, fragment', [
    ('{MD5}abc', 'unknown scheme'),
    ('$6$abc$def', 'prefix'),
    ('{SHA512-CRYPT}$2y$04$abc', 'does not start with'),
    ('{BLF-CRYPT}$2y$04$tooshort', 'BLF-CRYPT'),
    (None, 'text'),
])
def test_verify_rejects_what_it_cannot_read(stored, fragment):
    with pytest.raises(RuleError, match='mail_password_verify') as caught:
        mail_password_verify('Qx7!wwwwwwww', stored)
    assert fragment in str(caught.value)


def test_verify_accepts_dovecot_hashes_made_elsewhere():
    # As "doveadm pw" would make them: implied rounds, other bcrypt idents, lower-case scheme.
    assert mail_password_verify('Qx7!wwwwwwww', '{SHA512-CRYPT}' + sha512_crypt.using(rounds=5000).hash('Qx7!wwwwwwww'))
    assert mail_password_verify('Qx7!wwwwwwww', '{blf-crypt}' + bcrypt.using(rounds=4, ident='2b').hash('Qx7!wwwwwwww'))
    assert mail_password_verify('Qx7!wwwwwwww', '{ARGON2ID}' + argon2.using(
        type='id', rounds=1, memory_cost=256, parallelism=2).hash('Qx7!wwwwwwww'))


def test_verify_non_text_password_is_false():
    assert mail_password_verify(None, PREVIOUS_HASH) is False


# --- Many at once ------------------------------------------------------------------------

def test_hash_many_sequential_equals_one_by_one():
    items = [(i, 'Pass#%d-word' % i) for i in range(20)] + [{'id': 'x', 'password': 'Qx7!wwwwwwww'}]
    expected = [mail_password_hash(p, salt_from=s, **CHEAP['SHA512-CRYPT']) for s, p in items[:-1]]
    expected.append(mail_password_hash('Qx7!wwwwwwww', salt_from='x', **CHEAP['SHA512-CRYPT']))
    assert mail_password_hash_many(items, **CHEAP['SHA512-CRYPT']) == expected


def test_hash_many_in_processes_equals_one_by_one(hash_settings):
    count = mail_password.PARALLEL_THRESHOLD + 50
    items = [('user%d@bacgiang.gov.vn' % i, 'Pass#%d-word' % i) for i in range(count)]
    result = mail_password_hash_many(items)
    assert len(result) == count
    for i in random.Random(1).sample(range(count), 10) + [0, count - 1]:
        assert result[i] == mail_password_hash(items[i][1], salt_from=items[i][0])
    assert result[5].startswith('{%s}' % hash_settings['scheme'])


def test_hash_many_in_processes_other_scheme():
    count = mail_password.PARALLEL_THRESHOLD + 1
    items = [{'id': i, 'password': 'Pass#%d-word' % i} for i in range(count)]
    result = mail_password_hash_many(items, **CHEAP['BLF-CRYPT'])
    assert result[count - 1] == mail_password_hash('Pass#%d-word' % (count - 1), salt_from=count - 1,
                                                   **CHEAP['BLF-CRYPT'])


def test_hash_many_errors_name_the_item_not_the_password():
    with pytest.raises(RuleError, match='item 1') as caught:
        mail_password_hash_many([(1, 'Qx7!wwwwwwww'), (2, None)], **CHEAP['SHA512-CRYPT'])
    with pytest.raises(RuleError, match='item 0'):
        mail_password_hash_many(['Qx7!wwwwwwww'], **CHEAP['SHA512-CRYPT'])
    assert 'Qx7!' not in str(caught.value)


def test_hash_many_empty():
    assert mail_password_hash_many([], **CHEAP['SHA512-CRYPT']) == []


# --- Loading ---------------------------------------------------------------------------

def test_imports_without_ansible_passlib_and_crypt():
    """As on a host without passlib: the rules work, hashing says what is missing."""
    script = textwrap.dedent('''
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('ansible', 'passlib', 'crypt'):
                    raise ImportError('blocked: ' + name)

        sys.meta_path.insert(0, Block())
        from congvu_mail import address as mail_address, password as mail_password
        from congvu_mail.errors import RuleError
        assert issubclass(RuleError, ValueError)
        assert mail_address.mail_person_localpart('Nguyễn Văn Long') == 'longnv'
        assert mail_password.mail_password_errors('Lôngnv#2024x', login='longnv')
        try:
            mail_password.mail_password_hash('Qx7!wwwwwwww', scheme='BLF-CRYPT', rounds=4)
        except RuleError as exc:
            assert 'passlib' in str(exc), exc
        else:
            raise AssertionError('hashing without passlib should fail')
        print('ok')
    ''')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == 'ok', done.stderr


# --- mail_password_reused (Điều 4.2) ---------------------------------------------

def test_reused_is_the_history_rule_of_mail_password_errors(policy):
    stored = [mail_password.mail_password_hash('Old-%d-Pass-2026!' % n, rounds=1000) for n in range(5)]
    history = policy['history']
    for n in range(5):
        expected = n >= 5 - history
        assert mail_password.mail_password_reused('Old-%d-Pass-2026!' % n, stored, policy=policy) is expected
        assert (mail_password.MSG_REUSED.format(history=history) in mail_password.mail_password_errors(
            'Old-%d-Pass-2026!' % n, previous=stored, policy=policy)) is expected
    assert not mail_password.mail_password_reused('Old-1-Pass-2026!', [], policy=policy)
