"""The forwarding allow-list: filter_plugins/mail_forward.py, and the inventory check
of lists that uses it (mail_accounts_errors)."""

import re

import pytest
from hypothesis import given, strategies as st

from congvu_mail.accounts import mail_accounts_errors
from congvu_mail.forward import mail_forward_allowed, mail_forward_regexps
from congvu_mail.errors import RuleError


@pytest.fixture(scope='module')
def allowed(regulation_defaults):
    return ['bacgiang.gov.vn'] + regulation_defaults['regulation_forward_allowed_domains']


@pytest.mark.parametrize('address', [
    'longnv@bacgiang.gov.vn', 'ai@bacninh.gov.vn', 'VP@SOTTTT.HANOI.GOV.VN', 'x@a-b.gov.vn'])
def test_government_and_own_domains_are_allowed(address, allowed):
    assert mail_forward_allowed(address, allowed)


@pytest.mark.parametrize('address', [
    'someone@gmail.com', 'a@gov.vn.evil.com', 'a@evilgov.vn', 'a@gov.vn', 'a@bacgiang.gov.vn.example.net',
    'a@example.net@bacgiang.gov.vn.x', '@', ''])
def test_other_domains_are_refused(address, allowed):
    assert not mail_forward_allowed(address, allowed)


def test_regexps_are_what_postfix_reads():
    assert mail_forward_regexps(['*.gov.vn', 'BacGiang.gov.vn']) == [
        r'^[^@]*@([^@.]+\.)+gov\.vn$', r'^[^@]*@bacgiang\.gov\.vn$']


@pytest.mark.parametrize('pattern', ['*', '*.', 'gov..vn', 'exa mple.com', '*.*.gov.vn', '-a.vn'])
def test_bad_patterns_are_named(pattern):
    with pytest.raises(RuleError, match='not a domain'):
        mail_forward_regexps([pattern])


@given(domain=st.from_regex(r'[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}', fullmatch=True))
def test_a_domain_outside_gov_vn_is_never_allowed(domain, allowed):
    address = 'x@' + domain
    assert mail_forward_allowed(address, allowed) == bool(
        domain == 'bacgiang.gov.vn' or re.fullmatch(r'.+\.gov\.vn', domain))


def test_a_list_member_outside_the_allow_list_fails_validation(regulation_defaults):
    model = {
        'domain': 'bacgiang.gov.vn', 'domains': [{'name': 'bacgiang.gov.vn'}],
        'organizations': [{'name': 'Sở Thông tin và Truyền thông'}], 'people': [],
        'lists': [{'address': 'toanthe.stttt',
                   'members': ['stttt', 'vanthu@bacninh.gov.vn', 'canbo@gmail.com']}],
    }
    problems = mail_accounts_errors(
        model, forward_allowed=regulation_defaults['regulation_forward_allowed_domains'])
    assert problems == [
        'accounts_lists · toanthe.stttt · members · member canbo@gmail.com is outside the forwarding allow-list '
        '(no automatic forwarding to non-government mailboxes) · remove it, or add its domain to '
        'regulation_forward_allowed_domains']
    assert mail_accounts_errors(model) == []
