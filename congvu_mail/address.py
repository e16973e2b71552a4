# Address rules of the "công vụ" e-mail regulation (Điều 5).
# Bắc Giang Decision 27/2018/QĐ-UBND, replaced by Bắc Ninh Decision 79/2025/QĐ-UBND.
#
# The filter plugin mail_address hands these functions to Ansible; the
# password rules (congvu_mail.password) use vn_ascii too.

from __future__ import annotations



import re
import unicodedata

from .errors import RuleError


DUPLICATE_STRATEGIES = ('number', 'organization', 'citizen_id')

# RFC 5321, 4.5.3.1.1: the longest local part a mail server must accept.
MAX_LOCALPART_LENGTH = 64

_LOCALPART = re.compile(r'^[a-z0-9]+$')
_DOMAIN = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$')
# A word is a run of letters and digits (with any combining marks left after NFC).
# Everything else (spaces, "-", ",", "&", parentheses...) separates words.
_WORD = re.compile(r'(?:[^\W_]|[\u0300-\u036f])+')


# --- Text -------------------------------------------------------------------

def vn_ascii(text):
    """Vietnamese to ASCII: "Đặng Thị Ánh Tuyết" -> "Dang Thi Anh Tuyet"."""
    if not isinstance(text, str):
        raise RuleError('vn_ascii: expected a text string, got %s' % type(text).__name__)
    text = text.replace('đ', 'd').replace('Đ', 'D')
    # NFD splits "ặ" into "a" + breve + dot below; drop the combining marks.
    decomposed = unicodedata.normalize('NFD', text)
    stripped = ''.join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize('NFC', stripped)


def _words(filter_name, text):
    """The words of a name, in NFC, so that "và" compares the same whatever the input.
    A run of combining marks with no letter ("Nguyễn \u0301 Long") is no word."""
    if not isinstance(text, str):
        raise RuleError('%s: expected a text string, got %s' % (filter_name, type(text).__name__))
    return [w for w in _WORD.findall(unicodedata.normalize('NFC', text)) if vn_ascii(w)]


def _address_part(text):
    """An address part written together: no diacritics, lower case, only a-z 0-9."""
    return re.sub(r'[^a-z0-9]', '', vn_ascii(text).lower())


def _checked(filter_name, source, localpart):
    if not _LOCALPART.match(localpart):
        raise RuleError('%s: cannot make an address from %r (got %r, expected only a-z and 0-9)'
                        % (filter_name, source, localpart))
    return localpart


# --- Organisations, communes, people (Điều 5) -------------------------------

def _is_conjunction_va(word):
    # Điều 5 drops the conjunction "và" ("and"). "va" written without diacritics is
    # accepted too (names typed without accents); other tones ("vá", "vả", "vạ") are
    # different words and keep their initial.
    return word.lower() in ('và', 'va')


def _initial(word):
    # A word that starts with a digit keeps its whole number ("số 12" -> "s12"):
    # an initial "1" could not tell school no. 1 from no. 12.
    number = re.match(r'[0-9]+', word)
    if number:
        return number.group(0)
    return vn_ascii(word)[0].lower()


def mail_org_localpart(name, abbreviation=None, parent=None):
    """Organisation: initials without "và" and "-"; "Sở Tài nguyên và Môi trường" -> "stnmt"."""
    if abbreviation is not None and abbreviation != '':
        if not isinstance(abbreviation, str):
            raise RuleError('mail_org_localpart: abbreviation must be a text string, got %s'
                            % type(abbreviation).__name__)
        localpart = _checked('mail_org_localpart', abbreviation, _address_part(abbreviation))
    else:
        words = [w for w in _words('mail_org_localpart', name) if not _is_conjunction_va(w)]
        localpart = _checked('mail_org_localpart', name, ''.join(_initial(w) for w in words))
    if parent is None or parent == '':
        return localpart
    # Sub-unit: "<sub-unit>.<parent>" ("vp.stttt"). The parent is already a local part.
    parent_part = _dotted_part(parent)
    if not parent_part:
        raise RuleError('mail_org_localpart: unusable parent %r' % (parent,))
    return '%s.%s' % (localpart, parent_part)


def mail_place_localpart(name, prefix=None):
    """Commune or ward: the place name in full, written together; "Kinh Bắc" -> "kinhbac"."""
    if not isinstance(name, str):
        raise RuleError('mail_place_localpart: expected a text string, got %s' % type(name).__name__)
    localpart = _checked('mail_place_localpart', name, _address_part(name))
    if prefix is None or prefix == '':
        return localpart
    if not isinstance(prefix, str):
        raise RuleError('mail_place_localpart: prefix must be a text string')
    # Its Party committee "du.<place>", its People's Council "hdnd.<place>".
    return '%s.%s' % (_checked('mail_place_localpart', prefix, _address_part(prefix)), localpart)


def mail_person_localpart(full_name):
    """Person: given name in full, then the other initials; "Nguyễn Văn Long" -> "longnv"."""
    words = _words('mail_person_localpart', full_name)
    if not words:
        raise RuleError('mail_person_localpart: no name in %r' % (full_name,))
    given = vn_ascii(words[-1]).lower()
    initials = ''.join(vn_ascii(w)[0].lower() for w in words[:-1])
    return _checked('mail_person_localpart', full_name, given + initials)


# --- Checking an address ----------------------------------------------------

def mail_address_errors(address):
    """What is wrong with an address or a local part; [] when it is valid."""
    if not isinstance(address, str):
        return ['is not a text string']
    localpart, _, domain = address.rpartition('@') if '@' in address else (address, '', '')
    errors = []
    if not localpart:
        errors.append('has an empty local part')
    if len(localpart) > MAX_LOCALPART_LENGTH:
        errors.append('has a local part longer than %d characters (RFC 5321)' % MAX_LOCALPART_LENGTH)
    if localpart != localpart.lower():
        errors.append('has upper-case letters (Điều 5)')
    if re.search(r'[^a-z0-9.]', localpart.lower()):
        errors.append("has characters other than a-z, 0-9 and '.' (Điều 5)")
    if localpart.startswith('.') or localpart.endswith('.'):
        errors.append('starts or ends with a dot')
    if '..' in localpart:
        errors.append('has two dots in a row')
    if '@' in address and not _DOMAIN.match(domain):
        errors.append('has an invalid domain (lower-case letters, digits, "-" and "." only)')
    return errors


# --- Checking a name -------------------------------------------------------

# Apostrophes of names such as "H'Hen Niê" (straight and typographic).
_NAME_PUNCTUATION = " -'\u2019"


def _is_name_letter(char):
    """A letter of the Vietnamese alphabet, or a Latin letter of a minority name: a
    letter whose base, without its marks, is a-z (đ is d)."""
    return unicodedata.category(char).startswith('L') and re.fullmatch('[A-Za-z]', vn_ascii(char) or '') is not None


def mail_name_errors(name, digits=False):
    """What is wrong with a person's or an organisation's name; [] when it is a name."""
    if not isinstance(name, str):
        return ['is not a text string']
    text = unicodedata.normalize('NFC', name)
    if not text.strip():
        return ['is empty']
    errors, others, previous = [], [], ' '
    for char in text:
        if unicodedata.category(char).startswith('M'):
            if not (_is_name_letter(previous) or unicodedata.category(previous).startswith('M')):
                if 'lone mark' not in others:
                    others.append('lone mark')
        elif not (_is_name_letter(char) or char in _NAME_PUNCTUATION or (digits and '0' <= char <= '9')):
            shown = repr(char) if char.isprintable() and not char.isspace() else 'U+%04X' % ord(char)
            if shown not in others:
                others.append(shown)
        previous = char
    if 'lone mark' in others:
        others.remove('lone mark')
        errors.append('has an accent mark with no letter before it')
    if others:
        errors.append('has %s, not only letters, spaces, hyphens and apostrophes%s'
                      % (', '.join(others[:8]), ' (and digits)' if digits else ''))
    if not any(_is_name_letter(c) for c in text):
        errors.append('has no letter')
    return errors


# --- Giving everyone an address ---------------------------------------------

def _natural_key(person_id):
    # "9" before "10"; the id itself breaks ties ("01" and "1").
    parts = re.split(r'([0-9]+)', person_id)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], person_id


def _person_id(value):
    """Ids are compared and returned as text: 123 and "123" are the same person."""
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RuleError('mail_assign_addresses: id must be text or a number, got %r' % (value,))
    text = str(value).strip()
    if not text:
        raise RuleError('mail_assign_addresses: empty id')
    return text


def _full_address(value, domain):
    """A local part gets "@domain"; a full address is kept (its domain too). Lower case."""
    if not isinstance(value, str) or not value.strip():
        raise RuleError('mail_assign_addresses: expected an address, got %r' % (value,))
    value = value.strip().lower()
    return value if '@' in value else '%s@%s' % (value, domain)


def _dotted_part(value):
    """An existing local part (it may hold a dot, "vp.stttt"), normalised."""
    if not isinstance(value, str):
        return ''
    return re.sub(r'[^a-z0-9.]', '', vn_ascii(value).lower()).strip('.')


def _candidates(base, person, duplicates):
    """Local parts to try for one person, best first (an endless generator)."""
    yield base
    suffix = ''
    if duplicates == 'organization':
        organization = _dotted_part(person.get('organization'))
        if organization:
            suffix = '.' + organization
            yield base + suffix
    elif duplicates == 'citizen_id':
        digits = re.sub(r'[^0-9]', '', str(person.get('citizen_id') or ''))
        for count in (3, 4):
            if len(digits) >= count:
                yield base + digits[-count:]
    number = 2
    while True:
        yield '%s%d%s' % (base, number, suffix)
        number += 1


def mail_assign_addresses(people, domain, issued=None, duplicates='number', reserved=None):
    """Give every person a unique address; addresses already issued never change."""
    name = 'mail_assign_addresses'
    if duplicates not in DUPLICATE_STRATEGIES:
        raise RuleError('%s: unknown duplicates strategy %r (valid: %s)'
                        % (name, duplicates, ', '.join(DUPLICATE_STRATEGIES)))
    if not isinstance(domain, str) or not _DOMAIN.match(domain.strip().lstrip('@').lower()):
        raise RuleError('%s: invalid domain %r' % (name, domain))
    domain = domain.strip().lstrip('@').lower()

    by_id = {}
    for person in people or []:
        if not hasattr(person, 'get') or 'id' not in person:
            raise RuleError('%s: every person needs an "id", got %r' % (name, person))
        person_id = _person_id(person['id'])
        if person_id in by_id:
            raise RuleError('%s: id %s appears twice' % (name, person_id))
        by_id[person_id] = person

    # owner[address] says who holds an address: a person id, or "reserved".
    owner = {}
    for address in reserved or []:
        owner[_full_address(address, domain)] = 'reserved'

    def claim(address, person_id, what):
        holder = owner.get(address)
        if holder == 'reserved':
            raise RuleError('%s: %s address %s of id %s is reserved (an organisation mailbox or alias)'
                            % (name, what, address, person_id))
        if holder is not None and holder != person_id:
            raise RuleError('%s: %s address %s of id %s is already held by id %s'
                            % (name, what, address, person_id, holder))
        owner[address] = person_id

    # 1. Issued addresses, even of people no longer listed: they are never reused.
    issued_by_id = {}
    for raw_id, address in sorted((issued or {}).items(), key=lambda item: _natural_key(_person_id(item[0]))):
        person_id = _person_id(raw_id)
        issued_by_id[person_id] = _full_address(address, domain)
        claim(issued_by_id[person_id], person_id, 'issued')

    result = {}
    # 2. Explicit overrides, always honoured (they win over the person's own issued
    #    address, which stays blocked for everyone else).
    for person_id in sorted(by_id, key=_natural_key):
        explicit = by_id[person_id].get('address')
        if explicit is None or explicit == '':
            continue
        address = _full_address(explicit, domain)
        problems = mail_address_errors(address)
        if problems:
            raise RuleError('%s: explicit address %s of id %s %s'
                            % (name, address, person_id, '; '.join(problems)))
        claim(address, person_id, 'explicit')
        result[person_id] = address

    # 3. Everybody else keeps the address issued, or gets a new one, in order of id.
    for person_id in sorted(by_id, key=_natural_key):
        if person_id in result:
            continue
        if person_id in issued_by_id:
            result[person_id] = issued_by_id[person_id]
            continue
        person = by_id[person_id]
        base = mail_person_localpart(person.get('name'))
        for localpart in _candidates(base, person, duplicates):
            address = '%s@%s' % (localpart, domain)
            if address in owner:
                continue
            problems = mail_address_errors(address)
            if problems:
                raise RuleError('%s: no valid address for id %s: %s %s'
                                % (name, person_id, address, '; '.join(problems)))
            owner[address] = person_id
            result[person_id] = address
            break
    return result
