# Ansible filter plugin: the filters of congvu_mail.address (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_address
  short_description: Build and check official e-mail addresses (Điều 5)
  description:
    - Filters that turn Vietnamese names into the addresses the regulation prescribes.
    - Always lower case, no diacritics (đ becomes d), no spaces, written together.
    - C(vn_ascii(text)) removes Vietnamese diacritics (NFC or NFD input), đ/Đ to d/D;
      case and punctuation are kept.
    - C(mail_org_localpart(name, abbreviation=None, parent=None)) is the organisation's
      abbreviation, the initials of the words of its name without the word "và" and
      without "-" ("Sở Thông tin và Truyền thông" gives C(stttt)). With O(parent), a
      sub-unit address C(<abbreviation>.<parent>) ("Văn phòng", parent C(stttt) gives
      C(vp.stttt)).
    - C(mail_place_localpart(name, prefix=None)) is a commune or ward written in full and
      together ("Kinh Bắc" gives C(kinhbac)); O(prefix) names a body of that place
      (C(du), C(hdnd)) and gives C(du.kinhbac).
    - C(mail_person_localpart(full_name)) is the given name in full followed by the
      initials of the family and middle names ("Nguyễn Văn Long" gives C(longnv)).
    - C(mail_assign_addresses(people, domain, issued=None, duplicates='number',
      reserved=None)) gives every person a unique address, never changing one already
      issued.
    - C(mail_address_errors(address)) lists what is wrong with an address or a local part
      (empty when it is valid).
    - C(mail_name_errors(name, digits=False)) lists what is wrong with a person's or an
      organisation's name (empty when it is a name). After NFC, only letters (any letter
      of the Vietnamese alphabet, with its marks), spaces, hyphens and apostrophes; with
      O(digits) (communes, "Phường 12"), digits too.
  positional: _input
  options:
    _input:
      description: The name (or, for mail_assign_addresses, the list of people; for
        mail_address_errors, the address) to work on.
      type: raw
      required: true
    abbreviation:
      description: mail_org_localpart only. An explicit abbreviation, used instead of the
        initials; it is normalised like any address part (no diacritics, lower case,
        only a-z and 0-9 kept).
      type: str
    parent:
      description: mail_org_localpart only. The parent organisation's local part, for a
        sub-unit.
      type: str
    prefix:
      description: mail_place_localpart only. The body of the commune or ward
        (C(du) for its Party committee, C(hdnd) for its People's Council).
      type: str
    domain:
      description: mail_assign_addresses only. The province's mail domain.
      type: str
      required: true
    issued:
      description:
        - mail_assign_addresses only. Person id to the address already issued (read from
          the mail database). These never change and nobody else can get them, even when
          their owner is no longer in O(_input).
        - Ids are compared as text, so C(123) and C("123") are the same person.
      type: dict
    duplicates:
      description:
        - mail_assign_addresses only. What to do when two people get the same address.
        - C(number) gives C(longnv), C(longnv2), C(longnv3)...
        - C(organization) gives C(longnv), then C(longnv.<organization>), then
          C(longnv2.<organization>), C(longnv3.<organization>)...; a person without an
          organisation is numbered (C(longnv2)...).
        - C(citizen_id) gives C(longnv), then C(longnv) followed by the last 3 digits of
          the citizen ID, then by the last 4 digits, then numbering (C(longnv2)...), which
          is also what a person without a citizen ID gets.
      type: str
      default: number
      choices: [number, organization, citizen_id]
    reserved:
      description: mail_assign_addresses only. Local parts or addresses that no person
        may get (organisation mailboxes, aliases).
      type: list
      elements: str
"""

EXAMPLES = r"""
org: "{{ 'Sở Thông tin và Truyền thông' | mail_org_localpart }}"
# => 'stttt'

subunit: "{{ 'Văn phòng' | mail_org_localpart(parent='stttt') }}"
# => 'vp.stttt'

commune: "{{ 'Kinh Bắc' | mail_place_localpart }}"
# => 'kinhbac'

party_committee: "{{ 'Kinh Bắc' | mail_place_localpart(prefix='du') }}"
# => 'du.kinhbac'

person: "{{ 'Đặng Thị Ánh Tuyết' | mail_person_localpart }}"
# => 'tuyetdta'

addresses: >-
  {{ mail_people | mail_assign_addresses(mail_domain, issued=mail_issued,
                                         duplicates='citizen_id',
                                         reserved=mail_org_localparts) }}
# => {'1001': 'longnv@bacninh.gov.vn', '1002': 'longnv123@bacninh.gov.vn'}

problems: "{{ 'Long.NV@bacninh.gov.vn' | mail_address_errors }}"
# => ['has upper-case letters (Điều 5)']
"""

RETURN = r"""
  _value:
    description:
      - vn_ascii, mail_org_localpart, mail_place_localpart, mail_person_localpart - a string.
      - mail_assign_addresses - a dict, person id (as text) to full address (lower case),
        for every person in the input.
      - mail_address_errors - a list of strings, empty when the address is valid.
    type: raw
"""

from congvu_mail import address
from congvu_mail.filters import filter_map


class FilterModule:
    """Address rules of the regulation (Điều 5)."""

    def filters(self):
        return filter_map({
            'vn_ascii': address.vn_ascii,
            'mail_org_localpart': address.mail_org_localpart,
            'mail_place_localpart': address.mail_place_localpart,
            'mail_person_localpart': address.mail_person_localpart,
            'mail_assign_addresses': address.mail_assign_addresses,
            'mail_address_errors': address.mail_address_errors,
            'mail_name_errors': address.mail_name_errors,
        })
