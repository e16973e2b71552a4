"""Address rules of the regulation (Điều 5): filter_plugins/mail_address.py."""

import re
import unicodedata

import pytest
import yaml
from hypothesis import given, strategies as st

from congvu_mail import address as mail_address
from congvu_mail.address import (
    DUPLICATE_STRATEGIES,
    mail_address_errors,
    mail_assign_addresses,
    mail_org_localpart,
    mail_person_localpart,
    mail_place_localpart,
    vn_ascii,
)
from congvu_mail.errors import RuleError

DOMAIN = 'bacgiang.gov.vn'
LOCALPART = re.compile(r'^[a-z0-9.]+$')


def nfd(text):
    return unicodedata.normalize('NFD', text)


# --- The regulation's worked examples ----------------------------------------

@pytest.mark.parametrize('name, expected', [
    ('Sở Thông tin và Truyền thông', 'stttt'),
    ('Sở Tài nguyên và Môi trường', 'stnmt'),
    ('Văn phòng', 'vp'),
])
def test_org_examples(name, expected):
    assert mail_org_localpart(name) == expected
    assert mail_org_localpart(nfd(name)) == expected


def test_subunit_example():
    assert mail_org_localpart('Văn phòng', parent='stttt') == 'vp.stttt'


@pytest.mark.parametrize('name, expected', [
    ('Nguyễn Văn Long', 'longnv'),
    ('Đặng Thị Ánh Tuyết', 'tuyetdta'),
])
def test_person_examples(name, expected):
    assert mail_person_localpart(name) == expected
    assert mail_person_localpart(nfd(name)) == expected


def test_place_examples():
    assert mail_place_localpart('Kinh Bắc') == 'kinhbac'
    assert mail_place_localpart(nfd('Kinh Bắc')) == 'kinhbac'
    assert mail_place_localpart('Kinh Bắc', prefix='du') == 'du.kinhbac'
    assert mail_place_localpart('Kinh Bắc', prefix='HĐND') == 'hdnd.kinhbac'


# --- vn_ascii -------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('Đặng Thị Ánh Tuyết', 'Dang Thi Anh Tuyet'),
    ('đường ĐỜI', 'duong DOI'),
    ('Sở TT&TT (Bắc Giang), số 1', 'So TT&TT (Bac Giang), so 1'),
    ('plain ASCII: a-b_c.d!', 'plain ASCII: a-b_c.d!'),
    ('', ''),
])
def test_vn_ascii(text, expected):
    assert vn_ascii(text) == expected
    assert vn_ascii(nfd(text)) == expected


def test_vn_ascii_rejects_non_text():
    with pytest.raises(RuleError, match='vn_ascii'):
        vn_ascii(42)


VIETNAMESE_LETTERS = ('aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợ'
                      'pqrstuùúủũụưừứửữựvxyỳýỷỹỵ')
VIETNAMESE = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper()


@given(st.text(alphabet=VIETNAMESE + ' -,.&()0123456789'))
def test_vn_ascii_of_vietnamese_is_ascii_and_form_independent(text):
    result = vn_ascii(text)
    assert result.isascii()
    assert len(result) == len(text)
    assert vn_ascii(nfd(text)) == result


# --- Organisations -----------------------------------------------------------------

@pytest.mark.parametrize('name, expected', [
    ('SỞ THÔNG TIN VÀ TRUYỀN THÔNG', 'stttt'),           # "VÀ" in capitals is still "và"
    ('So Thong tin va Truyen thong', 'stttt'),           # typed without diacritics
    ('Sở Văn hóa, Thể thao và Du lịch', 'svhttdl'),       # commas are not words
    ('Sở Kế hoạch - Đầu tư', 'skhdt'),                    # a lone "-" is not a word
    ('Ban Dân tộc-Tôn giáo', 'bdttg'),                    # "-" inside separates words
    ('Sở Nội vụ', 'snv'),                                 # "vụ" is not "và"
    ('Hội Vả Vá Vạ', 'hvvv'),                             # other tones are words
    ('Trường THPT số 1', 'tts1'),                         # a number keeps all its digits
    ('Trường THCS số 12 (Lục Nam)', 'tts12ln'),
    ('Ủy ban & Hội đồng', 'ubhd'),
])
def test_org_rules(name, expected):
    assert mail_org_localpart(name) == expected
    assert mail_org_localpart(nfd(name)) == expected


@pytest.mark.parametrize('abbreviation, expected', [
    ('STTTT', 'stttt'),
    ('Sở TT-TT', 'sotttt'),
    ('  TN & MT ', 'tnmt'),
    ('Đ.Ủy', 'duy'),
])
def test_org_explicit_abbreviation(abbreviation, expected):
    assert mail_org_localpart('Sở Thông tin và Truyền thông', abbreviation=abbreviation) == expected


@pytest.mark.parametrize('name', ['', '   ', 'và', ' - , & ()', '学校'])
def test_org_unusable_names_raise(name):
    with pytest.raises(RuleError, match='mail_org_localpart'):
        mail_org_localpart(name)


def test_org_unusable_abbreviation_raises():
    with pytest.raises(RuleError, match='mail_org_localpart'):
        mail_org_localpart('Văn phòng', abbreviation='--')


@given(st.text(alphabet=VIETNAMESE + ' -,&()0123456789'))
def test_org_localpart_is_lower_ascii_or_an_error(name):
    try:
        result = mail_org_localpart(name)
    except RuleError as exc:
        assert 'mail_org_localpart' in str(exc)
        return
    assert re.match(r'^[a-z0-9]+$', result)
    assert mail_org_localpart(name) == result
    assert mail_org_localpart(nfd(name)) == result


# --- Communes and wards ------------------------------------------------------------

def test_place_rejects_empty():
    with pytest.raises(RuleError, match='mail_place_localpart'):
        mail_place_localpart(' - ')


# --- People ------------------------------------------------------------------------

@pytest.mark.parametrize('name, expected', [
    ('  nguyễn   VĂN   long ', 'longnv'),
    ('NGUYỄN VĂN LONG', 'longnv'),
    ('Long', 'long'),
    ('Đỗ Đức Đạt', 'datdd'),
    ('Trần Thị Thu Hà', 'hattt'),
])
def test_person_rules(name, expected):
    assert mail_person_localpart(name) == expected


@pytest.mark.parametrize('name', ['', '   ', '.,-', None, '李小龍'])
def test_person_unusable_names_raise(name):
    with pytest.raises(RuleError, match='mail_person_localpart'):
        mail_person_localpart(name)


VIETNAMESE_WORD = st.text(alphabet=VIETNAMESE, min_size=1, max_size=8)


@given(st.lists(VIETNAMESE_WORD, min_size=1, max_size=5), st.sampled_from([' ', '  ', '\t']))
def test_person_localpart_is_lower_ascii_and_deterministic(words, separator):
    name = separator.join(words)
    result = mail_person_localpart(name)
    assert re.match(r'^[a-z]+$', result)
    assert result == mail_person_localpart(nfd(name))
    assert result == mail_person_localpart(name.upper())
    assert result.startswith(vn_ascii(words[-1]).lower())
    assert len(result) == len(words[-1]) + len(words) - 1


# --- Checking addresses --------------------------------------------------------------

@pytest.mark.parametrize('address', ['longnv', 'longnv2', 'vp.stttt', 'longnv@bacgiang.gov.vn',
                                     'du.kinhbac@bacninh.gov.vn', 'a' * 64])
def test_valid_addresses(address):
    assert mail_address_errors(address) == []


@pytest.mark.parametrize('address, fragment', [
    ('LongNV', 'upper-case'),
    ('long nv', 'characters other than'),
    ('long_nv', 'characters other than'),
    ('lòngnv', 'characters other than'),
    ('.longnv', 'dot'),
    ('longnv.', 'dot'),
    ('long..nv', 'two dots'),
    ('', 'empty'),
    ('@bacgiang.gov.vn', 'empty'),
    ('a' * 65, 'longer than'),
    ('longnv@Bacgiang.gov.vn', 'domain'),
    ('longnv@bac_giang.gov.vn', 'domain'),
    (42, 'text'),
])
def test_invalid_addresses(address, fragment):
    errors = mail_address_errors(address)
    assert errors
    assert any(fragment in error for error in errors)


# --- Giving everyone an address -------------------------------------------------------

def person(person_id, name='Nguyễn Văn Long', **extra):
    return dict(id=person_id, name=name, **extra)


def addresses(localparts):
    return {str(k): '%s@%s' % (v, DOMAIN) for k, v in localparts.items()}


def test_assign_number():
    people = [person(3), person(1), person(2), person(4, 'Đặng Thị Ánh Tuyết')]
    assert mail_assign_addresses(people, DOMAIN) == addresses(
        {1: 'longnv', 2: 'longnv2', 3: 'longnv3', 4: 'tuyetdta'})


def test_assign_organization():
    people = [person(1, organization='stttt'), person(2, organization='stnmt'),
              person(3, organization='stnmt'), person(4), person(5, organization='vp.stttt')]
    assert mail_assign_addresses(people, DOMAIN, duplicates='organization') == addresses(
        {1: 'longnv', 2: 'longnv.stnmt', 3: 'longnv2.stnmt', 4: 'longnv2', 5: 'longnv.vp.stttt'})


def test_assign_citizen_id():
    people = [person(1, citizen_id='001090000001'),
              person(2, citizen_id='001090004123'),
              person(3, citizen_id='001090005123'),   # last 3 taken by 2: last 4
              person(4, citizen_id='001090005123'),   # last 3 and 4 taken: numbering
              person(5),                              # no citizen ID: numbering
              person(6, citizen_id='12')]             # too short: numbering
    assert mail_assign_addresses(people, DOMAIN, duplicates='citizen_id') == addresses(
        {1: 'longnv', 2: 'longnv123', 3: 'longnv5123', 4: 'longnv2', 5: 'longnv3', 6: 'longnv4'})


def test_assign_order_is_natural_order_of_ids():
    people = [person('10'), person('9'), person('A2'), person('A10')]
    assert mail_assign_addresses(people, DOMAIN) == addresses(
        {9: 'longnv', 10: 'longnv2', 'A2': 'longnv3', 'A10': 'longnv4'})


def test_assign_ids_are_text():
    issued = {7: 'longnv@' + DOMAIN}
    result = mail_assign_addresses([person('7'), person(8)], DOMAIN, issued=issued)
    assert result == addresses({'7': 'longnv', '8': 'longnv2'})


def test_assign_issued_never_changes_and_blocks_others():
    # Person 5 got "longnv" before 1 existed; 9 left, but "longnv2" stays his.
    issued = {5: 'longnv', 9: 'LONGNV2@' + DOMAIN}
    result = mail_assign_addresses([person(1), person(5)], DOMAIN, issued=issued)
    assert result == addresses({1: 'longnv3', 5: 'longnv'})


def test_assign_issued_address_in_other_domain_is_kept():
    result = mail_assign_addresses([person(1)], DOMAIN, issued={1: 'longnv@bacninh.gov.vn'})
    assert result == {'1': 'longnv@bacninh.gov.vn'}


def test_assign_explicit_addresses():
    people = [person(1), person(2, address='Long.Nguyen'), person(3, address='longnv@bacninh.gov.vn'),
              person(4, address='longnv')]
    assert mail_assign_addresses(people, DOMAIN) == {
        '1': 'longnv2@' + DOMAIN,            # explicit ones are claimed first
        '2': 'long.nguyen@' + DOMAIN,
        '3': 'longnv@bacninh.gov.vn',        # another domain is kept
        '4': 'longnv@' + DOMAIN,
    }


def test_assign_explicit_wins_over_own_issued_which_stays_blocked():
    people = [person(1, address='long.nguyen'), person(2)]
    result = mail_assign_addresses(people, DOMAIN, issued={1: 'longnv'})
    assert result == addresses({1: 'long.nguyen', 2: 'longnv2'})


def test_assign_never_generates_reserved():
    reserved = ['longnv', 'LONGNV2@' + DOMAIN, 'longnv3@other.gov.vn']
    result = mail_assign_addresses([person(1), person(2)], DOMAIN, reserved=reserved)
    assert result == addresses({1: 'longnv3', 2: 'longnv4'})


@pytest.mark.parametrize('people, issued, reserved, fragments', [
    ([person(1, address='stttt')], None, ['stttt'], ['1', 'reserved']),
    ([person(1, address='longnv'), person(2, address='LongNV@' + DOMAIN)], None, None, ['1', '2']),
    ([person(1, address='longnv'), person(2)], {2: 'longnv'}, None, ['1', '2']),
    ([person(1)], {1: 'stttt'}, ['stttt'], ['1', 'reserved']),
    ([person(1), person(2)], {1: 'longnv', 2: 'longnv'}, None, ['1', '2']),
    ([person(1, address='long nv')], None, None, ['1', 'characters']),
])
def test_assign_conflicts_raise(people, issued, reserved, fragments):
    with pytest.raises(RuleError, match='mail_assign_addresses') as caught:
        mail_assign_addresses(people, DOMAIN, issued=issued, reserved=reserved)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_assign_unknown_strategy_lists_valid_ones():
    with pytest.raises(RuleError) as caught:
        mail_assign_addresses([person(1)], DOMAIN, duplicates='random')
    for strategy in DUPLICATE_STRATEGIES:
        assert strategy in str(caught.value)


@pytest.mark.parametrize('people', [
    [person(1), person('1')],
    [{'name': 'Nguyễn Văn Long'}],
    [person(None)],
    [person(1, name='')],
])
def test_assign_bad_people_raise(people):
    with pytest.raises(RuleError):
        mail_assign_addresses(people, DOMAIN)


def test_assign_bad_domain_raises():
    with pytest.raises(RuleError, match='domain'):
        mail_assign_addresses([person(1)], 'not a domain')


# --- Properties of the assignment ----------------------------------------------------

# Few names, so that duplicates are common.
FAMILY = ['Nguyễn', 'Trần', 'Đặng']
MIDDLE = ['Văn', 'Thị', 'Ánh', 'Đức']
GIVEN = ['Long', 'Tuyết', 'Anh']

names = st.builds(lambda f, m, g: ' '.join([f] + m + [g]),
                  st.sampled_from(FAMILY), st.lists(st.sampled_from(MIDDLE), max_size=2),
                  st.sampled_from(GIVEN))
ids = st.one_of(st.integers(min_value=0, max_value=60),
                st.builds('{}{}'.format, st.sampled_from('ABC'), st.integers(min_value=0, max_value=99)))
people_lists = st.lists(
    st.fixed_dictionaries(
        {'id': ids, 'name': names},
        optional={'organization': st.sampled_from(['stttt', 'stnmt', 'vp.stttt']),
                  'citizen_id': st.integers(min_value=0, max_value=10 ** 12 - 1).map('{:012d}'.format)}),
    max_size=25, unique_by=lambda p: str(p['id']))
strategies = st.sampled_from(DUPLICATE_STRATEGIES)
reserved_lists = st.lists(st.sampled_from(['longnv', 'longnv2', 'tuyetdta', 'anhnv@' + DOMAIN, 'stttt']),
                          unique=True)


def check_addresses(result, people, reserved):
    assert set(result) == {str(p['id']) for p in people}
    values = list(result.values())
    assert len(values) == len(set(values)), 'two people share an address'
    reserved_full = {r if '@' in r else '%s@%s' % (r, DOMAIN) for r in reserved}
    assert not reserved_full & set(values)
    for address in values:
        localpart, domain = address.split('@')
        assert domain == DOMAIN
        assert LOCALPART.match(localpart)
        assert mail_address_errors(address) == []


@given(people_lists, strategies, reserved_lists)
def test_assign_unique_valid_and_never_reserved(people, duplicates, reserved):
    result = mail_assign_addresses(people, DOMAIN, duplicates=duplicates, reserved=reserved)
    check_addresses(result, people, reserved)


@given(people_lists, strategies, st.randoms(use_true_random=False))
def test_assign_independent_of_list_order(people, duplicates, rnd):
    shuffled = list(people)
    rnd.shuffle(shuffled)
    first = mail_assign_addresses(people, DOMAIN, duplicates=duplicates)
    assert mail_assign_addresses(shuffled, DOMAIN, duplicates=duplicates) == first
    assert mail_assign_addresses(people, DOMAIN, duplicates=duplicates) == first


@given(people_lists, people_lists, st.data(), strategies, reserved_lists)
def test_assign_issued_addresses_survive_additions_and_removals(before, newcomers, data, duplicates, reserved):
    issued = mail_assign_addresses(before, DOMAIN, duplicates=duplicates, reserved=reserved)
    staying = [p for p in before if data.draw(st.booleans())]
    known = {str(p['id']) for p in before}
    after = staying + [p for p in newcomers if str(p['id']) not in known]
    result = mail_assign_addresses(after, DOMAIN, issued=issued, duplicates=duplicates, reserved=reserved)
    check_addresses(result, after, reserved)
    for p in staying:
        assert result[str(p['id'])] == issued[str(p['id'])]
    # An address once issued is never given to somebody else, even after its owner left.
    for person_id, address in result.items():
        if person_id not in issued:
            assert address not in issued.values()


@given(st.lists(st.sampled_from(GIVEN), min_size=1, max_size=6), strategies)
def test_assign_first_of_a_name_gets_the_plain_address(given_names, duplicates):
    people = [person(i, 'Nguyễn Văn ' + g, organization='stttt', citizen_id='00109000%04d' % i)
              for i, g in enumerate(given_names)]
    result = mail_assign_addresses(people, DOMAIN, duplicates=duplicates)
    for g in set(given_names):
        first = min(i for i, other in enumerate(given_names) if other == g)
        assert result[str(first)] == '%snv@%s' % (vn_ascii(g).lower(), DOMAIN)


def expected_candidates(base, p, duplicates, limit):
    """The regulation's duplicate rules, written out plainly for the test."""
    org = p.get('organization')
    cid = p.get('citizen_id')
    if duplicates == 'organization' and org:
        return [base, '%s.%s' % (base, org)] + ['%s%d.%s' % (base, n, org) for n in range(2, limit)]
    first = [base]
    if duplicates == 'citizen_id' and cid:
        first += [base + cid[-3:], base + cid[-4:]]
    return first + ['%s%d' % (base, n) for n in range(2, limit)]


# Citizen IDs from a small pool: the last 3 digits often agree, the last 4 less often.
small_citizen_ids = st.sampled_from(['001090001123', '001090002123', '001090003123', '001090000456',
                                     '001090001456', '001090000789'])
same_name_people = st.lists(
    st.fixed_dictionaries(
        {'id': st.integers(min_value=0, max_value=99), 'name': st.just('Nguyễn Văn Long')},
        optional={'organization': st.sampled_from(['stttt', 'stnmt', 'vp.stttt']),
                  'citizen_id': small_citizen_ids}),
    max_size=12, unique_by=lambda p: p['id'])


@given(same_name_people, strategies)
def test_assign_each_strategy_takes_the_first_free_candidate_in_id_order(people, duplicates):
    result = mail_assign_addresses(people, DOMAIN, duplicates=duplicates)
    taken = set()
    for p in sorted(people, key=lambda p: p['id']):
        free = [c for c in expected_candidates('longnv', p, duplicates, len(people) + 3) if c not in taken]
        assert result[str(p['id'])] == '%s@%s' % (free[0], DOMAIN)
        taken.add(free[0])


