"""Country and AS of an address, from MaxMind DB files (``.mmdb``) read with MaxMind's own ``maxminddb`` reader.

Three families of free databases use the format, each with its own record layout:

* MaxMind GeoLite2 / GeoIP2 Country and City: ``{"country": {"iso_code": "DE", ...}, ...}``; GeoLite2-ASN
  (and GeoIP2-ISP): ``{"autonomous_system_number": 3320, "autonomous_system_organization": "..."}``.
* DB-IP lite (country, city, ASN): MaxMind's layouts, on purpose ("DBIP-ASN-Lite (compat=GeoLite2-ASN)").
* IPinfo: flat records, one layout per product.  IPinfo Lite holds both country and AS:
  ``{"country_code": "DE", "country": "Germany", "asn": "AS3320", "as_name": "...", ...}``; the older free
  country and country_asn files put the *code* in ``country`` (``"country_name"`` holds the name), the free
  ASN file has ``{"asn": "AS3320", "name": "...", ...}``.

The layout is chosen once, when the file is opened, from its metadata's database type (and, for IPinfo, from
the fields its first records carry); a type we do not know, or a file of the other kind (an ASN file given for
countries), is refused then with one line, never read as something it is not.  A record that does not hold what
its layout promises (a country name where a code belongs) raises ``UnexpectedRecord`` at lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

import maxminddb

from ethcrawl.db.records import MAX_ASN, Place

__all__ = [
    "GeoIPError", "GeoIPUnreadable", "UnknownLayout", "UnexpectedRecord", "KINDS", "MMDBFile", "GeoIP",
    "COUNTRY_TYPES", "ASN_TYPES",
]  # fmt: skip

# What a file can be asked for: "country" fills nodes'/sightings' country, "asn" their asn and as_org.
KINDS = ("country", "asn")
# Database types with MaxMind's nested country record (the list geoip2's own readers accept for country lookups).
COUNTRY_TYPES = frozenset({
    "GeoLite2-Country", "GeoLite2-City", "GeoIP2-Country", "GeoIP2-City", "GeoIP2-City-Africa",
    "GeoIP2-City-Asia-Pacific", "GeoIP2-City-Europe", "GeoIP2-City-North-America", "GeoIP2-City-South-America",
    "GeoIP2-Precision-City", "GeoIP2-Enterprise", "GeoIP-City-Redacted-US", "GeoIP-Enterprise-Redacted-US",
    "DBIP-Country-Lite", "DBIP-City-Lite", "DBIP-Country", "DBIP-Location (compat=City)",
})  # fmt: skip
# Database types with MaxMind's flat AS record.
ASN_TYPES = frozenset({
    "GeoLite2-ASN", "GeoIP2-ISP", "GeoIP2-Precision-ISP", "DBIP-ASN-Lite", "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
})  # fmt: skip
# IPinfo names every product "ipinfo <file name>" ("ipinfo generic_asn_free.mmdb", ...).
IPINFO_PREFIX = "ipinfo "
# Records read when an IPinfo file is opened, to see which fields it has: its first networks are ordinary ones
# (IPinfo leaves out reserved ranges), and a few hundred records take well under a millisecond.
PROBE_RECORDS = 256
_ISO_CODE = re.compile(r"[A-Z]{2}")
_IPINFO_ASN = re.compile(r"AS([0-9]{1,10})")


class GeoIPError(Exception):
    """Root of what this module raises; the message is one line naming the file, ready for the CLI."""


class GeoIPUnreadable(GeoIPError):
    """Raised when the file is missing, a directory, unreadable, or not (or no longer) a valid MaxMind DB."""


class UnknownLayout(GeoIPError):
    """Raised at open time when we do not know the file's record layout, or it holds the other kind of data."""


class UnexpectedRecord(GeoIPError):
    """Raised when a record does not hold what its layout promises (a country name where a code belongs)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """How one file's records give a place: the family (for messages) and one reader of the raw record."""

    family: str
    read: Callable[[Mapping[str, Any]], tuple[object, object, object]]  # (country, asn, as_org), unchecked

    @property
    def text_asn(self) -> bool:
        """IPinfo writes AS numbers as text ("AS3320"); MaxMind and DB-IP as numbers."""
        return self.family == "IPinfo"


def _nested_country(record: Mapping[str, Any]) -> tuple[object, object, object]:
    """ValueError when "country" is not a map of fields, as MaxMind's layout has it."""
    country = record.get("country")
    # MaxMind leaves out "country" where it does not know where the address is (its registered_country is who
    # holds the range, which is not where the node runs): unknown, then.
    if country is None:
        return None, None, None
    if not isinstance(country, Mapping):
        raise ValueError(f"country {country!r}, not a map of fields")
    return country.get("iso_code"), None, None


def _flat_asn(record: Mapping[str, Any]) -> tuple[object, object, object]:
    return None, record.get("autonomous_system_number"), record.get("autonomous_system_organization")


def _ipinfo_layout(path: str, reader: maxminddb.Reader, kind: str) -> _Layout:
    """IPinfo's layout for ``kind``, from the fields of the file's first records."""
    fields: dict[str, list[object]] = {}
    probed: Iterator[tuple[Any, Any]] = iter(reader)
    for _, record in islice(probed, PROBE_RECORDS):
        if isinstance(record, Mapping):
            for key, value in record.items():
                fields.setdefault(key, []).append(value)
    if kind == "country":
        if "country_code" in fields:  # IPinfo Lite: "country" is the name there
            return _Layout("IPinfo", lambda r: (r.get("country_code"), None, None))
        codes = [v for v in fields.get("country", []) if v != ""]
        if codes and all(isinstance(v, str) and _ISO_CODE.fullmatch(v) for v in codes):
            return _Layout("IPinfo", lambda r: (r.get("country"), None, None))  # the free country(_asn) files
        raise UnknownLayout(f"{path}: this IPinfo file has no country code field (country_code, or country as a code)")
    if "asn" not in fields:
        raise UnknownLayout(f"{path}: this IPinfo file has no asn field: not an ASN database")
    org = "as_name" if "as_name" in fields else "name"  # Lite and country_asn say as_name; the ASN file, name
    return _Layout("IPinfo", lambda r: (None, r.get("asn"), r.get(org)))


def _layout(path: str, reader: maxminddb.Reader, kind: str) -> _Layout:
    kind_types, other_types = (COUNTRY_TYPES, ASN_TYPES) if kind == "country" else (ASN_TYPES, COUNTRY_TYPES)
    database_type = str(reader.metadata().database_type)
    if database_type in kind_types:
        family = "DB-IP" if database_type.startswith("DBIP-") else "MaxMind"
        return _Layout(family, _nested_country if kind == "country" else _flat_asn)
    if database_type.lower().startswith(IPINFO_PREFIX):
        return _ipinfo_layout(path, reader, kind)
    if database_type in other_types:
        option = "--asn" if kind == "country" else "--geoip"
        what = "country" if kind == "country" else "AS"
        raise UnknownLayout(f"{path} is a {database_type} database, which holds no {what} data (give it to {option})")
    raise UnknownLayout(
        f"{path}: unknown MaxMind DB type {database_type!r}; ethcrawl reads MaxMind GeoLite2/GeoIP2 Country, City and "
        "ASN, DB-IP lite and IPinfo files"
    )


def _text(value: object, what: str, path: str, ip: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnexpectedRecord(f"{path}: the record of {ip} has {what} {value!r}, not text")
    return value


def _country(value: object, path: str, ip: str) -> str | None:
    code = _text(value, "country", path, ip)
    if code is not None and not _ISO_CODE.fullmatch(code):
        raise UnexpectedRecord(f"{path}: the record of {ip} has country {code!r}, not an ISO 3166 code")
    return code


def _asn(value: object, path: str, ip: str, *, text: bool) -> int | None:
    if value is None or value == "":
        return None
    if text and isinstance(value, str):  # IPinfo: "AS3320"
        match = _IPINFO_ASN.fullmatch(value)
        if match is None:
            raise UnexpectedRecord(f"{path}: the record of {ip} has asn {value!r}, not AS<number>")
        value = int(match.group(1))
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ASN:
        raise UnexpectedRecord(f"{path}: the record of {ip} has AS number {value!r}, not a 32-bit number")
    return value


def _lookup_address(ip: str) -> IPv4Address | IPv6Address | None:
    """The address to look up for a stored one (IPv4-mapped IPv6 as the IPv4 it is); None if it is not one."""
    try:
        address = ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class MMDBFile:
    """One open MaxMind DB file, read for one kind ("country" or "asn"); GeoIPError if it cannot serve it."""

    def __init__(self, path: str, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.path, self.kind = path, kind
        if Path(path).is_dir():
            raise GeoIPUnreadable(f"cannot open {path}: it is a directory")
        try:
            self._reader = maxminddb.open_database(path)
        except OSError as exc:
            raise GeoIPUnreadable(f"cannot open {path}: {exc.strerror or exc}") from exc
        except (maxminddb.InvalidDatabaseError, ValueError) as exc:
            raise GeoIPUnreadable(f"{path} is not a MaxMind DB file (.mmdb), or it is damaged") from exc
        try:
            self._ip_version = int(self._reader.metadata().ip_version)
            self.layout = _layout(path, self._reader, kind)
        except maxminddb.InvalidDatabaseError as exc:
            self._reader.close()
            raise GeoIPUnreadable(f"{path} is a damaged MaxMind DB file: {exc}") from exc
        except BaseException:
            self._reader.close()
            raise

    @property
    def database_type(self) -> str:
        return str(self._reader.metadata().database_type)

    def _record(self, ip: str) -> Mapping[str, Any] | None:
        address = _lookup_address(ip)
        if address is None or (address.version == 6 and self._ip_version == 4):
            return None  # an IPv4-only database knows nothing of IPv6 addresses
        try:
            record = self._reader.get(address)
        except maxminddb.InvalidDatabaseError as exc:
            raise GeoIPUnreadable(f"{self.path} is a damaged MaxMind DB file: {exc}") from exc
        if record is None:
            return None
        if not isinstance(record, Mapping):
            raise UnexpectedRecord(f"{self.path}: the record of {ip} is {type(record).__name__}, not a map of fields")
        return record

    def lookup(self, ip: str) -> Place:
        """What this file says about ``ip`` for its kind (the other kind's fields None); Place() if nothing."""
        record = self._record(ip)
        if record is None:
            return Place()
        try:
            country, asn, as_org = self.layout.read(record)
        except ValueError as exc:
            raise UnexpectedRecord(f"{self.path}: the record of {ip} has {exc}") from None
        if self.kind == "country":
            return Place(country=_country(country, self.path, ip))
        number = _asn(asn, self.path, ip, text=self.layout.text_asn)
        # An organisation without its AS number says nothing we can count by.
        return Place(asn=number, as_org=_text(as_org, "AS organisation", self.path, ip) if number is not None else None)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> MMDBFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class GeoIP:
    """The ``--geoip`` (country or city) and ``--asn`` files, opened and checked; ``locate`` answers for one address.

    ``kinds`` says which columns the lookups fill ("country", "asn"): a file not given leaves its columns alone.
    Use as a context manager, or ``close()``.
    """

    def __init__(self, *, country: str | None = None, asn: str | None = None) -> None:
        self._files: list[MMDBFile] = []
        try:
            for path, kind in ((country, "country"), (asn, "asn")):
                if path is not None:
                    self._files.append(MMDBFile(path, kind))
        except BaseException:
            self.close()
            raise
        self.kinds = tuple(f.kind for f in self._files)

    def locate(self, ip: str) -> Place:
        found = [f.lookup(ip) for f in self._files]
        country = next((p.country for p in found if p.country is not None), None)
        asn = next((p for p in found if p.asn is not None), Place())
        return Place(country=country, asn=asn.asn, as_org=asn.as_org)

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
