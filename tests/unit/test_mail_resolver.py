"""The local resolver's local data and the checks of its settings (congvu_mail.resolver)."""

import pytest

from congvu_mail.errors import RuleError
from congvu_mail.resolver import mail_resolver_address_errors, mail_resolver_local_data


SNIPPET = '''; Managed by congvu-mail (Ansible): local changes are overwritten.
; --- Mail exchanger
bacgiang.gov.vn. 3600 IN MX 10 mail.bacgiang.gov.vn.
mail.bacgiang.gov.vn. 3600 IN A 192.0.2.10
bacgiang.gov.vn. 3600 IN TXT "v=spf1 mx -all"
congvu1._domainkey.bacgiang.gov.vn. 3600 IN TXT ( "v=DKIM1; k=rsa; p=" "MIIB" "IjAN" )
_dmarc.bacgiang.gov.vn. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@bacgiang.gov.vn"
multi.bacgiang.gov.vn. 3600 IN TXT (
    "a;b"  ; a comment
    "c" )
'''


def test_records_become_one_line_each_without_comments():
    assert mail_resolver_local_data(SNIPPET) == [
        'bacgiang.gov.vn. 3600 IN MX 10 mail.bacgiang.gov.vn.',
        'mail.bacgiang.gov.vn. 3600 IN A 192.0.2.10',
        'bacgiang.gov.vn. 3600 IN TXT "v=spf1 mx -all"',
        'congvu1._domainkey.bacgiang.gov.vn. 3600 IN TXT "v=DKIM1; k=rsa; p=" "MIIB" "IjAN"',
        '_dmarc.bacgiang.gov.vn. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@bacgiang.gov.vn"',
        'multi.bacgiang.gov.vn. 3600 IN TXT "a;b" "c"',
    ]


@pytest.mark.parametrize('text', ['a. 60 IN TXT ( "x"', 'a. 60 IN TXT "x" )', "a. 60 IN TXT \"it's\""])
def test_a_snippet_unbound_cannot_read_is_refused(text):
    with pytest.raises(RuleError, match='mail_resolver_local_data'):
        mail_resolver_local_data(text)


def test_forwarders_must_be_addresses():
    assert mail_resolver_address_errors(['192.0.2.53', '2001:db8::53', '192.0.2.53@5353']) == []
    errors = mail_resolver_address_errors(['dns.example.net', '192.0.2.1@99999', '10.0.0.300'])
    assert [e.split(' · ')[0] for e in errors] == [
        'resolver_forwarders[0]', 'resolver_forwarders[1]', 'resolver_forwarders[2]']
    assert all('not an IP address' in e for e in errors)
