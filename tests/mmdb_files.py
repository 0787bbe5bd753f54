"""Small MaxMind DB files in the real layouts of GeoLite2, DB-IP lite and IPinfo, written with ``mmdb-writer``.

Import by name (``from mmdb_files import ...``).  Networks are loopback and documentation ranges only
(127.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); AS numbers are the documentation
ones (RFC 5398: 64496-64511).  Records carry the fields each vendor's files carry (names, continent, domain), so
the reader under test has to pick the right ones out, as in a real file.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

__all__ = [
    "COUNTRY_NAMES", "write_mmdb", "geolite2_country", "geolite2_city", "geolite2_asn", "dbip_country", "dbip_asn",
    "ipinfo_lite", "ipinfo_country_asn", "ipinfo_asn",
]  # fmt: skip

COUNTRY_NAMES = {"DE": "Germany", "US": "United States", "JP": "Japan", "FR": "France", "NL": "Netherlands"}
CONTINENTS = {"DE": "EU", "US": "NA", "JP": "AS", "FR": "EU", "NL": "EU"}
CONTINENT_NAMES = {"EU": "Europe", "NA": "North America", "AS": "Asia"}


def write_mmdb(path: Path, database_type: str, records: Mapping[str, Any], *, ip_version: int = 6) -> Path:
    """``records``: CIDR -> record.  An IPv6 file keeps IPv4 networks in its IPv4 subtree, as MaxMind's do."""
    writer = MMDBWriter(
        ip_version=ip_version, database_type=database_type, ipv4_compatible=ip_version == 6,
        languages=["en"], description=f"ethcrawl test {database_type}",
    )
    for cidr, record in records.items():
        if ip_version == 4 and ip_network(cidr).version == 6:
            continue
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def _maxmind_country(code: str) -> dict[str, Any]:
    continent = CONTINENTS[code]
    return {
        "continent": {"code": continent, "geoname_id": MmdbU32(6255148), "names": {"en": CONTINENT_NAMES[continent]}},
        "country": {"geoname_id": MmdbU32(2921044), "iso_code": code, "names": {"en": COUNTRY_NAMES[code]}},
        "registered_country": {"geoname_id": MmdbU32(2921044), "iso_code": code, "names": {"en": COUNTRY_NAMES[code]}},
    }


def geolite2_country(path: Path, countries: Mapping[str, str], *, ip_version: int = 6) -> Path:
    return write_mmdb(path, "GeoLite2-Country", {n: _maxmind_country(c) for n, c in countries.items()}, ip_version=ip_version)


def geolite2_city(path: Path, countries: Mapping[str, str]) -> Path:
    records = {
        n: {**_maxmind_country(c), "city": {"geoname_id": MmdbU32(2950159), "names": {"en": "Somewhere"}},
            "location": {"accuracy_radius": 100, "latitude": 52.5, "longitude": 13.4, "time_zone": "Europe/Berlin"}}
        for n, c in countries.items()
    }  # fmt: skip
    return write_mmdb(path, "GeoLite2-City", records)


def geolite2_asn(path: Path, asns: Mapping[str, tuple[int, str]]) -> Path:
    records = {
        n: {"autonomous_system_number": MmdbU32(asn), "autonomous_system_organization": org} for n, (asn, org) in asns.items()
    }
    return write_mmdb(path, "GeoLite2-ASN", records)


def dbip_country(path: Path, countries: Mapping[str, str]) -> Path:
    """DB-IP's country lite: MaxMind's nested layout with is_in_european_union, no registered_country."""
    records = {
        n: {
            "continent": {"code": CONTINENTS[c], "geoname_id": MmdbU32(6255148), "names": {"en": CONTINENT_NAMES[CONTINENTS[c]]}},
            "country": {"geoname_id": MmdbU32(2921044), "is_in_european_union": CONTINENTS[c] == "EU", "iso_code": c,
                        "names": {"en": COUNTRY_NAMES[c]}},
        }
        for n, c in countries.items()
    }  # fmt: skip
    return write_mmdb(path, "DBIP-Country-Lite", records)


def dbip_asn(path: Path, asns: Mapping[str, tuple[int, str]]) -> Path:
    records = {
        n: {"autonomous_system_number": MmdbU32(asn), "autonomous_system_organization": org} for n, (asn, org) in asns.items()
    }
    return write_mmdb(path, "DBIP-ASN-Lite (compat=GeoLite2-ASN)", records)


def ipinfo_lite(path: Path, places: Mapping[str, tuple[str, int | None, str | None]]) -> Path:
    """IPinfo Lite: flat; ``country`` is the *name*, ``country_code`` the code, ``asn`` "AS<n>" (empty if none)."""
    records = {
        n: {
            "as_domain": "example.com" if asn else "", "as_name": org or "", "asn": f"AS{asn}" if asn else "",
            "continent": CONTINENT_NAMES[CONTINENTS[c]], "continent_code": CONTINENTS[c], "country": COUNTRY_NAMES[c],
            "country_code": c,
        }
        for n, (c, asn, org) in places.items()
    }  # fmt: skip
    return write_mmdb(path, "ipinfo ipinfo_lite.mmdb", records)


def ipinfo_country_asn(path: Path, places: Mapping[str, tuple[str, int, str]]) -> Path:
    """IPinfo's older free country_asn file: ``country`` is the *code* there, ``country_name`` the name."""
    records = {
        n: {
            "as_domain": "example.com", "as_name": org, "asn": f"AS{asn}", "continent": CONTINENTS[c],
            "continent_name": CONTINENT_NAMES[CONTINENTS[c]], "country": c, "country_name": COUNTRY_NAMES[c],
        }
        for n, (c, asn, org) in places.items()
    }  # fmt: skip
    return write_mmdb(path, "ipinfo generic_country_free_country_asn.mmdb", records)


def ipinfo_asn(path: Path, asns: Mapping[str, tuple[int, str]]) -> Path:
    """IPinfo's older free ASN file: ``asn`` "AS<n>", the organisation under ``name``."""
    records = {
        n: {"asn": f"AS{asn}", "domain": "example.com", "name": org, "route": n, "type": "hosting"}
        for n, (asn, org) in asns.items()
    }
    return write_mmdb(path, "ipinfo generic_asn_free.mmdb", records)
