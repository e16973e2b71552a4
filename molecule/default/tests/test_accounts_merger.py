"""The 2025 merger: Bắc Giang's domain becomes an alias of Bắc Ninh's. The
module puts the lab's domain back when it is done."""

import datetime
import smtplib

import pytest

from mailtest import new_message, run_playbook
from test_accounts import DOMAIN, address, person


@pytest.fixture(scope='module')
def merger(host, lab, server):
    """The 2025 merger: bacgiang.gov.vn becomes an alias of bacninh.gov.vn."""
    def merge(send_until):
        return run_playbook('tools/accounts.yml', {
            'mail_domain': 'bacninh.gov.vn',
            'mail_domains': [{'name': 'bacninh.gov.vn'},
                             {'name': DOMAIN, 'alias_of': 'bacninh.gov.vn', 'send_until': send_until}],
        }, check=True)
    before = new_message('someone@example.net', address('BG0001'), body='Before the merger.\n')
    with server.smtp(25) as client:
        client.send_message(before)
    server.wait_for_message(address('BG0001'), person(lab, 'BG0001')['password'], before['Message-ID'])
    merge(str(datetime.date.today() + datetime.timedelta(days=30)))
    yield {'merge': merge, 'before': before}
    run_playbook('tools/accounts.yml', check=True)


def test_merger_moves_the_address_and_keeps_the_mail(merger, server, lab):
    new = address('BG0001', 'bacninh.gov.vn')
    server.wait_for_message(new, person(lab, 'BG0001')['password'], merger['before']['Message-ID'], timeout=5)


def test_merger_old_address_still_receives(merger, server, lab):
    msg = new_message('someone@example.net', address('BG0001'), body='To the old address.\n')
    with server.smtp(25) as client:
        assert client.send_message(msg) == {}
    server.wait_for_message(address('BG0001', 'bacninh.gov.vn'), person(lab, 'BG0001')['password'], msg['Message-ID'])


def test_merger_old_address_may_send_until_the_transition_ends(merger, server, lab):
    login = address('BG0001', 'bacninh.gov.vn')
    password = person(lab, 'BG0001')['password']
    msg = new_message(address('BG0001'), address('BG0003', 'bacninh.gov.vn'), body='From the old address.\n')
    with server.submission(login, password) as client:
        assert client.send_message(msg) == {}
    merger['merge'](str(datetime.date.today() - datetime.timedelta(days=1)))
    late = new_message(address('BG0001'), address('BG0003', 'bacninh.gov.vn'), body='Too late.\n')
    with server.submission(login, password) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(late)
