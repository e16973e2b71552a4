"""Print how to reach the lab: endpoints, the CA to trust, and the accounts.

The addresses come from the lab's mailbox database (what the accounts role
really issued); the passwords are the lab inventory's LAB ONLY initial ones.
"""

import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
ENDPOINTS = [
    ('SMTP (MX, STARTTLS)', 2525, 25),
    ('Submission (STARTTLS + login)', 2587, 587),
    ('Submissions (implicit TLS + login)', 2465, 465),
    ('IMAP (STARTTLS)', 2143, 143),
    ('IMAPS', 2993, 993),
    ('POP3 (STARTTLS)', 2110, 110),
    ('POP3S', 2995, 995),
    ('Webmail, auto-configuration (HTTPS)', 8443, 443),
    ('HTTP (redirects to HTTPS)', 8080, 80),
    ('ManageSieve (STARTTLS)', 4190, 4190),
    ('Directory, LDAPS', 2636, 636),
]


def main(container):
    accounts = yaml.safe_load((PROJECT / 'inventories/lab/group_vars/all/accounts.yml').read_text(encoding='utf-8'))
    passwords = {str(p['id']): p.get('password') for p in accounts['accounts_people']}
    rows = subprocess.run(
        ['/usr/bin/docker', 'exec', container, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-F', '\t',
         '-d', 'mail', '-c', 'SELECT account_id, address, name, role, state FROM mailboxes ORDER BY kind DESC, address'],
        check=True, capture_output=True, text=True).stdout.splitlines()
    print('\ncongvu-mail lab is up. Server name: mail.bacgiang.gov.vn, on 127.0.0.1:\n')
    for label, host_port, port in ENDPOINTS:
        print('  %-36s 127.0.0.1:%d  (port %d in the lab host)' % (label, host_port, port))
    print('\nTrust the lab CA in your client: %s' % (PROJECT / '.lab/tls/ca.crt'))
    print('Directory (danh bạ): base DN dc=bacgiang,dc=gov,dc=vn, bind DN uid=<local part>,ou=people,'
          'dc=bacgiang,dc=gov,dc=vn with the mail password;')
    print('  the page: https://mail.bacgiang.gov.vn:8443/danh-ba/ (map the name to 127.0.0.1 in /etc/hosts)')
    print('Log in with the full address. Accounts (LAB ONLY passwords):\n')
    for row in rows:
        account_id, address, name, role, state = row.split('\t')
        password = passwords.get(account_id, '(organisation mailbox)')
        print('  %-30s %-24s %-6s %-10s %s' % (address, name, role, state, password or ''))
    print('\nWebmail: map the names in /etc/hosts (127.0.0.1 mail.bacgiang.gov.vn autoconfig.bacgiang.gov.vn'
          ' autodiscover.bacgiang.gov.vn), trust the CA, open https://mail.bacgiang.gov.vn:8443/')
    print('Try it with Thunderbird or any mail client and the settings above; `make lab-down` removes the host.')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'congvu-lab')
