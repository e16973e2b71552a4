# Ansible filter plugin: the filters of congvu_mail.password (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

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

from congvu_mail import password
from congvu_mail.filters import filter_map


class FilterModule:
    """Password rules of the regulation (Điều 4.1, 4.2) and Dovecot hashes."""

    def filters(self):
        return filter_map({
            'mail_password_errors': password.mail_password_errors,
            'mail_password_hash': password.mail_password_hash,
            'mail_password_hash_many': password.mail_password_hash_many,
            'mail_password_reused': password.mail_password_reused,
            'mail_password_verify': password.mail_password_verify,
        })
