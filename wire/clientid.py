"""Parse the free-text client id a peer sends in its devp2p Hello.

Most clients follow geth's ``Name[/user data]/vVersion/os-arch/runtime``, with
variations: Rust target triples for the platform (``x86_64-unknown-linux-gnu``),
Nethermind's ``X64-Linux`` and bare .NET version, Besu's ``openjdk-java-21``,
Reth putting user data after the platform, nimbus-eth1's space-separated
``nimbus-eth1 v0.1.0 [linux: amd64, rocksdb, ...]``.  The string is whatever
the peer chose, so :func:`parse_client_id` never raises: it extracts what it
recognises, leaves the rest ``None``, and always keeps ``raw``.

Normalisations follow the established crawlers (angaz/node-crawler,
ethpandaops): lower-case names; os one of linux/macos/windows/freebsd/...;
arch one of amd64/arm64/386/arm/s390x/...
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

__all__ = ["ClientId", "parse_client_id"]

#: Characters of a client id we look at.  Real ids are under ~130 characters;
#: a hostile peer may send megabytes, which we keep in ``raw`` but do not scan.
MAX_PARSED_LENGTH = 1024

#: Longest client name we accept, in characters (longer is user data gone wrong).
MAX_NAME_LENGTH = 64

_OS_WORDS = {
    "linux": "linux",
    "windows": "windows",
    "win32": "windows",
    "win64": "windows",
    "mingw32": "windows",
    "darwin": "macos",
    "macos": "macos",
    "osx": "macos",
    "freebsd": "freebsd",
    "openbsd": "openbsd",
    "netbsd": "netbsd",
    "android": "android",
    "ios": "ios",
    "illumos": "illumos",
    "solaris": "solaris",
}

_ARCH_WORDS = {
    "amd64": "amd64",
    "x86_64": "amd64",
    "x64": "amd64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "386": "386",
    "i386": "386",
    "i586": "386",
    "i686": "386",
    "x86": "386",
    "arm": "arm",
    "armv6l": "arm",
    "armv7": "arm",
    "armv7l": "arm",
    "armhf": "arm",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "riscv64gc": "riscv64",
    "ppc64": "ppc64",
    "ppc64le": "ppc64le",
    "mips64": "mips64",
    "mips64le": "mips64le",
    "loong64": "loong64",
}

#: Vendor and ABI parts of target triples: allowed in a platform, carry nothing.
_TRIPLE_FILLER = frozenset(
    {"unknown", "pc", "apple", "gnu", "musl", "alpine", "msvc", "gnueabihf",
     "musleabihf", "eabihf", "none", "w64", "elf"}
)

#: Language when the id names no runtime (or a bare runtime version).
_NAME_LANGUAGE = {
    "geth": "go",
    "erigon": "go",
    "turbo-geth": "go",
    "coregeth": "go",
    "bor": "go",
    "go-opera": "go",
    "reth": "rust",
    "openethereum": "rust",
    "parity-ethereum": "rust",
    "parity": "rust",
    "nethermind": "dotnet",
    "besu": "java",
    "ethereum(j)": "java",
    "nimbus-eth1": "nim",
    "ethereumjs": "nodejs",
    "ethereumjs-devp2p": "nodejs",
}

_NAME_ALIASES = {"go-ethereum": "geth"}

#: Runtime segment shapes, tried in order: (pattern on the lower-cased segment, language).
_RUNTIMES = (
    (re.compile(r"go\d"), "go"),
    (re.compile(r"rustc?(?:[-_ ]?\d|$)"), "rust"),
    (re.compile(r"(?:dotnet|\.net|net|core)[-_ ]?\d|dotnet"), "dotnet"),
    (re.compile(r".*(?:java|jdk)"), "java"),
    (re.compile(r"nim(?:[-_ ]?\d|$)"), "nim"),
    (re.compile(r"node(?:js)?(?:[-_ ]?v?\d|$)"), "nodejs"),
    (re.compile(r"c?python[-_ ]?\d?"), "python"),
)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.()+-]*", re.ASCII)
_VERSION_RE = re.compile(r"(?:v[a-z]{0,8})?(\d{1,9}(?:\.\d{1,9}){1,3})(.*)", re.ASCII | re.IGNORECASE | re.DOTALL)
_UNTAGGED_RE = re.compile(r"v?untagged(.*)", re.ASCII | re.IGNORECASE | re.DOTALL)
_BARE_VERSION_RE = re.compile(r"v?\d{1,9}(?:\.\d{1,9})+\S*", re.ASCII)
_COMMIT_RE = re.compile(r"g?([0-9a-f]{7,40})", re.ASCII | re.IGNORECASE)
_PARENTHESIZED_RE = re.compile(r"\(([^()]*)\)")
#: Numbers after a version that are not commits: counts, yyyymmdd dates, unix times.
_NOT_A_COMMIT_RE = re.compile(r"\d{1,6}|(?:19|20)\d\d(?:0[1-9]|1[0-2])\d\d|1\d{9}", re.ASCII)
_NAME_AND_COMMIT_RE = re.compile(r"(.+?)-([0-9a-f]{7,40})", re.ASCII | re.IGNORECASE)
_SPACED_RE = re.compile(r"(\S+) (v?\d[^\s\[]*)(?: *\[([^\]]*)\])?\s*", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientId:
    """What a Hello client id says about the software, as far as we can tell.

    ``version`` is the dotted number ("1.13.14"), split into ``major``/
    ``minor``/``patch``; ``tag`` is what follows it apart from the commit
    ("stable", "unstable", "beta.5", "rc.1-stable"); ``build`` the commit hash.
    ``runtime`` is the runtime segment as sent ("go1.21.7", "dotnet8.0.2",
    "openjdk-java-21"), ``language`` its family ("go", "dotnet", "java", ...).
    ``user_data`` holds operator-chosen segments (geth's ``--identity``, Reth's
    trailing extras); ``extra`` the segments or features we do not interpret.
    """

    raw: str
    name: str | None = None
    user_data: str | None = None
    version: str | None = None
    major: int | None = None
    minor: int | None = None
    patch: int | None = None
    tag: str | None = None
    build: str | None = None
    os: str | None = None
    arch: str | None = None
    language: str | None = None
    runtime: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        """``(major, minor, patch)`` with a missing patch as 0, or None without a version."""
        if self.major is None or self.minor is None:
            return None
        return (self.major, self.minor, self.patch or 0)


@dataclass(slots=True)
class _Draft:
    """Mutable fields while parsing; frozen into a :class:`ClientId` at the end."""

    name: str | None = None
    user_data: str | None = None
    version: str | None = None
    major: int | None = None
    minor: int | None = None
    patch: int | None = None
    tag: str | None = None
    build: str | None = None
    os: str | None = None
    arch: str | None = None
    language: str | None = None
    runtime: str | None = None
    extra: tuple[str, ...] = ()


def parse_client_id(raw: str) -> ClientId:
    """Parse a Hello client id; never raises, unknown parts stay ``None``."""
    text = raw[:MAX_PARSED_LENGTH].strip()
    draft = _Draft()
    spaced = _SPACED_RE.fullmatch(text) if "/" not in text else None
    if spaced is not None:
        _parse_spaced(draft, spaced)
    elif "/" in text:
        _parse_slashed(draft, text.split("/"))
    else:
        _parse_single(draft, text)
    if draft.language is None and draft.name is not None:
        draft.language = _NAME_LANGUAGE.get(draft.name)
    return ClientId(raw=raw, **asdict(draft))


def _parse_name(segment: str) -> str | None:
    segment = segment.strip()
    if len(segment) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(segment):
        return None
    name = segment.lower()
    return _NAME_ALIASES.get(name, name)


def _parse_single(draft: _Draft, text: str) -> None:
    """One token: a name, or Reth's early ``reth-<commit>``."""
    with_commit = _NAME_AND_COMMIT_RE.fullmatch(text)
    if with_commit is not None and _parse_name(with_commit[1]) is not None:
        draft.name = _parse_name(with_commit[1])
        draft.build = with_commit[2].lower()
    else:
        draft.name = _parse_name(text)


def _parse_spaced(draft: _Draft, match: re.Match[str]) -> None:
    """nimbus-eth1's ``name vX.Y.Z [os: arch, feature, ..., commit]``."""
    draft.name = _parse_name(match[1])
    _apply_version(draft, match[2])
    if match[3] is None:
        return
    os_part, colon, features = match[3].partition(":")
    if not colon:
        os_part, features = "", match[3]
    draft.os = _OS_WORDS.get(os_part.strip().lower())
    extra = []
    for feature in (f.strip() for f in features.split(",")):
        if not feature:
            continue
        if draft.arch is None and feature.lower() in _ARCH_WORDS:
            draft.arch = _ARCH_WORDS[feature.lower()]
        elif draft.build is None and re.fullmatch(r"[0-9a-f]{6,40}", feature, re.ASCII):
            draft.build = feature
        else:
            extra.append(feature)
    draft.extra = tuple(extra)


def _parse_slashed(draft: _Draft, segments: list[str]) -> None:
    """geth's family: ``name[/user data]/version/platform/runtime[/more]``."""
    draft.name = _parse_name(segments[0])
    rest = segments[1:]
    at_version = next((i for i, s in enumerate(rest) if _is_version(s)), None)
    start = 0 if at_version is None else at_version + 1
    at_platform = next(
        (i for i in range(start, len(rest)) if _parse_platform(rest[i]) is not None), None
    )
    first_anchor = at_version if at_version is not None else at_platform
    user = rest[:first_anchor] if first_anchor is not None else rest
    extra: list[str] = []
    if at_version is not None:
        _apply_version(draft, rest[at_version])
    if at_platform is not None:
        platform = _parse_platform(rest[at_platform])
        if platform is not None:  # always, by how at_platform was found
            draft.os, draft.arch = platform
        extra.extend(rest[start:at_platform])
    last_anchor = at_platform if at_platform is not None else at_version
    after = rest[last_anchor + 1 :] if last_anchor is not None else []
    if after and _runtime_language(after[0]) is not None:
        draft.runtime = after[0]
        language = _runtime_language(after[0])
        draft.language = language or None  # "" means a bare version: ask the name
        extra.extend(after[1:])
    else:
        # Reth appends its extras after the platform and names no runtime.
        user = user + after
    draft.user_data = "/".join(s for s in user if s) or None
    draft.extra += tuple(s for s in extra if s)


def _is_version(segment: str) -> bool:
    return bool(_VERSION_RE.fullmatch(segment) or _UNTAGGED_RE.fullmatch(segment))


def _apply_version(draft: _Draft, segment: str) -> None:
    match = _VERSION_RE.fullmatch(segment)
    if match is not None:
        draft.version = match[1]
        numbers = [int(n) for n in match[1].split(".")]
        draft.major, draft.minor = numbers[0], numbers[1]
        draft.patch = numbers[2] if len(numbers) > 2 else None
        suffix = match[2]
    else:
        untagged = _UNTAGGED_RE.fullmatch(segment)
        if untagged is None:
            return
        draft.tag, suffix = "untagged", untagged[1]
    # Forks note their upstream in parentheses: "-stable-2d22fd00(quorum-v2.2.3)".
    draft.extra += tuple(_PARENTHESIZED_RE.findall(suffix))
    suffix = _PARENTHESIZED_RE.sub("", suffix)
    tags = [draft.tag] if draft.tag else []
    for token in re.split(r"[-+]", suffix):
        commit = _COMMIT_RE.fullmatch(token)
        if not token or _NOT_A_COMMIT_RE.fullmatch(token):
            continue  # build dates, unix times, commits-since-tag counts
        if commit is not None and draft.build is None:
            draft.build = commit[1].lower()
        elif token != ".":
            tags.append(token)
    draft.tag = "-".join(tags) or None


def _parse_platform(segment: str) -> tuple[str | None, str | None] | None:
    """``linux-amd64``, ``X64-Linux 4.15.0``, ``x86_64-unknown-linux-gnu``, ``windows``..."""
    words = segment.split(" ", 1)[0].lower().split("-")
    os_name = arch = None
    for word in words:
        if word in _OS_WORDS and os_name is None:
            os_name = _OS_WORDS[word]
        elif word in _ARCH_WORDS and arch is None:
            arch = _ARCH_WORDS[word]
        elif word not in _TRIPLE_FILLER:
            return None
    if os_name is None and arch is None:
        return None
    return os_name, arch


def _runtime_language(segment: str) -> str | None:
    """Language family of a runtime segment; "" for a bare version; None if not a runtime."""
    lowered = segment.strip().lower()
    for pattern, language in _RUNTIMES:
        if pattern.match(lowered):
            return language
    if _BARE_VERSION_RE.fullmatch(lowered):
        return ""
    return None
