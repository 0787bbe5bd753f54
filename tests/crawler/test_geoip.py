"""crawler.geoip: each vendor's real record layout read right, an unknown one refused when the file is opened."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from mmdb_files import (
    dbip_asn, dbip_country, geolite2_asn, geolite2_city, geolite2_country, ipinfo_asn, ipinfo_country_asn, ipinfo_lite,
    write_mmdb,
)  # fmt: skip

from ethcrawl.crawler.geoip import GeoIP, GeoIPUnreadable, MMDBFile, UnexpectedRecord, UnknownLayout
from ethcrawl.db.records import Place

COUNTRIES = {"127.0.0.0/24": "DE", "192.0.2.0/24": "US", "2001:db8::/32": "JP"}
ASNS = {"127.0.0.0/24": (64500, "Example Cloud"), "198.51.100.0/24": (64501, "Example Telecom"), "2001:db8::/32": (64502, "Example v6")}
LITE = {
    "127.0.0.0/24": ("DE", 64500, "Example Cloud"),
    "192.0.2.0/24": ("US", None, None),  # IPinfo Lite: a range with a country and no AS
    "2001:db8::/32": ("JP", 64502, "Example v6"),
}
# What each of those files must say: (ip, country file's answer, ASN file's answer).
EXPECTED = [
    ("127.0.0.7", Place(country="DE"), Place(asn=64500, as_org="Example Cloud")),
    ("192.0.2.1", Place(country="US"), Place()),
    ("198.51.100.9", Place(), Place(asn=64501, as_org="Example Telecom")),
    ("2001:db8::1", Place(country="JP"), Place(asn=64502, as_org="Example v6")),
    ("203.0.113.5", Place(), Place()),  # in no file
    ("::ffff:127.0.0.7", Place(country="DE"), Place(asn=64500, as_org="Example Cloud")),  # IPv4-mapped: the IPv4
]

COUNTRY_WRITERS = {
    "GeoLite2-Country": geolite2_country, "GeoLite2-City": geolite2_city, "DBIP-Country-Lite": dbip_country,
    "IPinfo Lite": lambda path, countries: ipinfo_lite(path, {n: (c, None, None) for n, c in countries.items()}),
    "IPinfo country_asn": lambda path, countries: ipinfo_country_asn(path, {n: (c, 64499, "x") for n, c in countries.items()}),
}  # fmt: skip
ASN_WRITERS = {
    "GeoLite2-ASN": geolite2_asn, "DBIP-ASN-Lite": dbip_asn, "IPinfo ASN": ipinfo_asn,
    "IPinfo country_asn": lambda path, asns: ipinfo_country_asn(path, {n: ("FR", a, o) for n, (a, o) in asns.items()}),
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(COUNTRY_WRITERS))
def test_country_files_of_every_vendor_give_the_iso_code(tmp_path: Path, layout: str) -> None:
    with MMDBFile(str(COUNTRY_WRITERS[layout](tmp_path / "c.mmdb", COUNTRIES)), "country") as file:
        assert [file.lookup(ip) for ip, _, _ in EXPECTED] == [want for _, want, _ in EXPECTED]


@pytest.mark.parametrize("layout", sorted(ASN_WRITERS))
def test_asn_files_of_every_vendor_give_the_number_and_organisation(tmp_path: Path, layout: str) -> None:
    with MMDBFile(str(ASN_WRITERS[layout](tmp_path / "a.mmdb", ASNS)), "asn") as file:
        assert [file.lookup(ip) for ip, _, _ in EXPECTED] == [want for _, _, want in EXPECTED]


def test_ipinfo_lite_country_is_the_code_not_the_name_and_one_file_serves_both(tmp_path: Path) -> None:
    path = str(ipinfo_lite(tmp_path / "lite.mmdb", LITE))
    with GeoIP(country=path, asn=path) as geo:
        assert geo.kinds == ("country", "asn")
        assert geo.locate("127.0.0.7") == Place(country="DE", asn=64500, as_org="Example Cloud")
        assert geo.locate("192.0.2.1") == Place(country="US")  # "asn": "" is no AS, not an error
        assert geo.locate("2001:db8::1") == Place(country="JP", asn=64502, as_org="Example v6")


def test_geoip_with_one_file_fills_only_its_kind(tmp_path: Path) -> None:
    with GeoIP(asn=str(geolite2_asn(tmp_path / "a.mmdb", ASNS))) as geo:
        assert geo.kinds == ("asn",)
        assert geo.locate("127.0.0.1") == Place(asn=64500, as_org="Example Cloud")


def test_an_ipv4_only_database_knows_nothing_of_ipv6(tmp_path: Path) -> None:
    with MMDBFile(str(geolite2_country(tmp_path / "v4.mmdb", COUNTRIES, ip_version=4)), "country") as file:
        assert file.lookup("127.0.0.1") == Place(country="DE")
        assert file.lookup("2001:db8::1") == Place()


@pytest.mark.parametrize(
    ("make", "kind", "message"),
    [
        (lambda p: geolite2_asn(p, ASNS), "country", "is a GeoLite2-ASN database, which holds no country data (give it to --asn)"),
        (lambda p: geolite2_country(p, COUNTRIES), "asn", "is a GeoLite2-Country database, which holds no AS data (give it to --geoip)"),
        (lambda p: write_mmdb(p, "GeoIP2-Anonymous-IP", {"127.0.0.0/8": {"is_anonymous": True}}), "country", "unknown MaxMind DB type 'GeoIP2-Anonymous-IP'"),
        (lambda p: write_mmdb(p, "Acme-Geo", {"127.0.0.0/8": {"country_code": "DE"}}), "country", "unknown MaxMind DB type 'Acme-Geo'"),
        (lambda p: ipinfo_asn(p, ASNS), "country", "has no country code field"),
        (lambda p: write_mmdb(p, "ipinfo generic_country_free.mmdb", {"127.0.0.0/8": {"country": "DE"}}), "asn", "has no asn field"),
        # An IPinfo file whose "country" holds names and no country_code field: not read as codes.
        (lambda p: write_mmdb(p, "ipinfo odd.mmdb", {"127.0.0.0/8": {"country": "Germany"}}), "country", "has no country code field"),
    ],
)  # fmt: skip
def test_an_unknown_layout_or_the_wrong_kind_is_refused_when_opened(
    tmp_path: Path, make: Callable[[Path], Path], kind: str, message: str
) -> None:
    path = make(tmp_path / "x.mmdb")
    with pytest.raises(UnknownLayout, match="^" + re.escape(str(path)) + ".*" + re.escape(message)):
        MMDBFile(str(path), kind)


@pytest.mark.parametrize(
    ("record", "kind", "message"),
    [
        ({"country": {"iso_code": "Germany"}}, "country", "has country 'Germany', not an ISO 3166 code"),
        ({"country": {"iso_code": "de"}}, "country", "has country 'de', not an ISO 3166 code"),
        ({"country": {"iso_code": 276}}, "country", "has country 276, not text"),
        ({"country": "DE"}, "country", "has country 'DE', not a map of fields"),
        ({"autonomous_system_number": "lots", "autonomous_system_organization": "x"}, "asn", "AS number 'lots'"),
    ],
)
def test_a_record_that_breaks_its_layout_is_an_error_not_data(tmp_path: Path, record: dict[str, object], kind: str, message: str) -> None:
    database_type = "GeoLite2-Country" if kind == "country" else "GeoLite2-ASN"
    path = write_mmdb(tmp_path / "odd.mmdb", database_type, {"127.0.0.0/8": record})
    with MMDBFile(str(path), kind) as file, pytest.raises(UnexpectedRecord, match=re.escape(message)):
        file.lookup("127.0.0.1")


def test_an_ipinfo_asn_that_is_not_as_number_is_an_error(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "odd.mmdb", "ipinfo generic_asn_free.mmdb", {"127.0.0.0/8": {"asn": "15169", "name": "x"}})
    with MMDBFile(str(path), "asn") as file, pytest.raises(UnexpectedRecord, match="has asn '15169', not AS<number>"):
        file.lookup("127.0.0.1")


def test_missing_directory_and_corrupt_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GeoIPUnreadable, match=r"cannot open .*nope\.mmdb: No such file or directory"):
        MMDBFile(str(tmp_path / "nope.mmdb"), "country")
    with pytest.raises(GeoIPUnreadable, match="it is a directory"):
        MMDBFile(str(tmp_path), "country")
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(GeoIPUnreadable, match=r"garbage\.mmdb is not a MaxMind DB file"):
        MMDBFile(str(garbage), "country")
    good = geolite2_country(tmp_path / "good.mmdb", COUNTRIES).read_bytes()
    truncated = tmp_path / "truncated.mmdb"
    truncated.write_bytes(good[: len(good) // 3])  # the metadata lives at the end: gone
    with pytest.raises(GeoIPUnreadable, match=r"truncated\.mmdb is not a MaxMind DB file"):
        MMDBFile(str(truncated), "country")


def test_geoip_closes_the_first_file_when_the_second_is_refused(tmp_path: Path) -> None:
    country = str(geolite2_country(tmp_path / "c.mmdb", COUNTRIES))
    with pytest.raises(UnknownLayout):
        GeoIP(country=country, asn=country)
