"""Registered official networks download themselves: fetch, verify, import safely, cache the folder.

``load(name)`` and ``progan-zoo fetch NAME`` call ``fetch_official`` when a registry entry with an
``"official"`` record is not imported yet. The file goes to ``cache_dir()/downloads`` (a ``.part``
file first, resumed with an HTTP ``Range`` request after a cut transfer), is verified, imported
through the safe importer (``importer.import_model``: no code from the file runs) and the
converted folder is moved into place whole.

Verification, strongest first (the record's ``verified`` field says which applied):

- ``pinned``: the registry entry gives ``"sha256"`` (a published hash);
- ``hash-prefix``: pytorch_GAN_zoo's torch.hub files end in ``-<first hex digits of the sha256>.pth``,
  which torch.hub itself checks; we check the same prefix;
- ``first-download``: nothing is published (the official TF release lists no hashes). The first
  download's sha256 is recorded in ``cache_dir()/pins.json``, in the converted model's metadata
  (``download``) and on its card; a later download with another hash is refused.

An HTML answer (Google Drive's quota or virus-scan page, a login page, an error page) is
recognised from its Content-Type or its first bytes and refused; it is never imported.
``HF_HUB_OFFLINE=1`` or ``PROGAN_ZOO_OFFLINE=1`` turn downloads off.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from progan_zoo.errors import RunFailure, UserError
from progan_zoo.jsonl import read_json

if TYPE_CHECKING:
    from .registry import ModelEntry

CHUNK = 1 << 16
ATTEMPTS = 5                      # transfers per file (the first plus resumed ones)
TIMEOUT_S = 30.0                  # per socket operation, not per file
USER_AGENT = "progan-zoo-fetch"
# torch.hub's convention: "<name>-<hex prefix of the file's sha256>.<ext>".
HASH_PREFIX_RE = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Expected:
    """What a download must hash to: a whole sha256, a prefix of one, or nothing published."""

    kind: str                     # "pinned", "hash-prefix" or "first-download"
    value: str | None             # hex sha256 or its prefix; None for first-download

    def check(self, sha256: str) -> bool:
        return self.value is None or sha256.startswith(self.value)


def offline() -> bool:
    """Downloads are off: ``HF_HUB_OFFLINE`` (the Hugging Face switch) or ``PROGAN_ZOO_OFFLINE`` is set."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "PROGAN_ZOO_OFFLINE"))


def cache_dir() -> Path:
    """Where downloads go: ``$PROGAN_ZOO_CACHE``, else ``$XDG_CACHE_HOME/progan_zoo`` (``~/.cache/...``)."""
    env = os.environ.get("PROGAN_ZOO_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "progan_zoo"


def direct_url(url: str) -> str:
    """A Google Drive viewer link (``/open?id=`` or ``/file/d/ID/view``) as its direct-download form."""
    p = urllib.parse.urlparse(url)
    if p.netloc != "drive.google.com":
        return url
    m = re.match(r"^/file/d/([^/]+)", p.path)
    file_id = m.group(1) if m else urllib.parse.parse_qs(p.query).get("id", [None])[0]
    return f"https://drive.google.com/uc?export=download&id={file_id}" if file_id else url


def expected_hash(official: dict[str, Any], file: str) -> Expected:
    """The check a download of an ``official`` registry record must pass (see the module docstring)."""
    sha = official.get("sha256")
    if sha:
        return Expected("pinned", str(sha).lower())
    m = HASH_PREFIX_RE.search(file)
    if m:
        return Expected("hash-prefix", m.group(1))
    return Expected("first-download", None)


def looks_like_html(head: bytes) -> bool:
    """The first bytes of an HTML page (what Google Drive sends instead of a file it will not serve)."""
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or b"<html" in text[:512]


# ---------------------------------------------------------------------------------------- transfer
def _html_refusal(url: str, file: str) -> RunFailure:
    return RunFailure(f"{url}: answered with an HTML page (a Google Drive quota or virus-scan page, a login or "
                      f"an error page), not {file}; it was not imported. Download {file} in a browser and run "
                      f"`progan-zoo import {file}`")


def _open(url: str, start: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _resume_offset(resp: http.client.HTTPResponse, start: int) -> int:
    """Where the body of ``resp`` starts in the file: ``start`` for a matching 206, 0 when the server
    ignored the Range header and sends the whole file again (a 200)."""
    if start and resp.status == 206:
        m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == start:
            return start
        raise RunFailure(f"{resp.url}: answered a resume from byte {start} with Content-Range "
                         f"{resp.headers.get('Content-Range')!r}; delete {cache_dir() / 'downloads'} and retry")
    return 0


def _total(resp: http.client.HTTPResponse, offset: int) -> int | None:
    m = re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range", ""))
    if m:
        return int(m.group(1))
    n = resp.headers.get("Content-Length")
    return offset + int(n) if n and n.isdigit() else None


def _copy(resp: http.client.HTTPResponse, out: BinaryIO, bar: Any, url: str, file: str, first: bool) -> None:
    while True:
        block = resp.read(CHUNK)
        if not block:
            return
        if first:
            if looks_like_html(block):
                raise _html_refusal(url, file)
            first = False
        out.write(block)
        bar.update(len(block))


def download(url: str, dest: Path, *, progress: bool = True) -> str:
    """Download ``url`` to ``dest`` (resuming ``dest.part`` if a cut transfer left one); returns its sha256.

    A transfer that ends early is resumed with a Range request, up to ``ATTEMPTS`` transfers in all.
    An HTML answer raises at once and leaves nothing behind.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    src = direct_url(url)
    total: int | None = None
    last_error = ""
    with tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
              disable=None if progress else True, leave=False) as bar:
        for _ in range(ATTEMPTS):
            start = part.stat().st_size if part.is_file() else 0
            try:
                resp = _open(src, start)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and start:  # the part is whole or stale: start again
                    part.unlink()
                    continue
                part.unlink(missing_ok=True)
                raise RunFailure(f"{url}: HTTP {exc.code} {exc.reason}; the file may have moved (download "
                                 f"{dest.name} by hand and run `progan-zoo import`)") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RunFailure(f"{url}: cannot connect ({reason}); check the network, or set "
                                 "PROGAN_ZOO_OFFLINE=1 to use only what is cached") from None
            with resp:
                if resp.headers.get_content_type() == "text/html":
                    part.unlink(missing_ok=True)
                    raise _html_refusal(url, dest.name)
                offset = _resume_offset(resp, start)
                total = _total(resp, offset)
                bar.total, bar.n = total, offset
                bar.refresh()
                try:
                    with open(part, "ab" if offset else "wb") as out:
                        _copy(resp, out, bar, url, dest.name, first=offset == 0)
                except RunFailure:
                    part.unlink(missing_ok=True)
                    raise
                except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as exc:
                    last_error = f"{type(exc).__name__}"
            have = part.stat().st_size
            if total is None or have == total:
                break
            if have > total:
                part.unlink()
                raise RunFailure(f"{url}: sent {have} bytes for a file of {total}; try again")
            last_error = last_error or f"transfer ended at byte {have} of {total}"
        else:
            raise RunFailure(f"{url}: the transfer was cut {ATTEMPTS} times ({last_error}); run the same command "
                             f"again to resume from {part}")
    h = hashlib.sha256()
    with open(part, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    os.replace(part, dest)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- pins
def _pins_file() -> Path:
    return cache_dir() / "pins.json"


def read_pins() -> dict[str, dict[str, Any]]:
    """First-download hashes: name -> {url, file, sha256}."""
    f = _pins_file()
    if not f.is_file():
        return {}
    data = read_json(f, "fix it, or delete it to trust the next download")
    return data if isinstance(data, dict) else {}


def _write_pin(name: str, record: dict[str, Any]) -> None:
    from progan_zoo.fsutil import replaced_atomically

    pins = read_pins()
    pins[name] = record
    with replaced_atomically(_pins_file()) as tmp:
        tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _known_sha(entry: "ModelEntry") -> str | None:
    """The hash an earlier download of this name had: the pin file, else the imported folder's record."""
    pin = read_pins().get(entry.name, {}).get("sha256")
    if pin:
        return str(pin)
    meta_file = Path(entry.location) / "metadata.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        return (meta.get("download") or {}).get("sha256") or (meta.get("provenance") or {}).get("sha256")
    return None


# ---------------------------------------------------------------------------------------- fetch
def fetch_official(entry: "ModelEntry", *, force: bool = False, progress: bool = True) -> Path:
    """Download, verify and import a registered official network; returns the converted folder.

    Already imported and not ``force``: returns the folder as it is. A file left in the download
    cache by an earlier fetch is verified again and used instead of downloading.
    """
    from . import records as R
    from .folder import whole_folder, write_record
    from .importer import import_model

    if entry.kind != "official" or not entry.download or not entry.official_file:
        raise UserError(f"{entry.name}: not an official network with a download location (see `progan-zoo models`)")
    out = Path(entry.location)
    if entry.imported and not force:
        return out
    if offline():
        raise UserError(f"{entry.name}: not imported yet and downloads are off (HF_HUB_OFFLINE or "
                        f"PROGAN_ZOO_OFFLINE); download {entry.official_file} from {entry.download} and run "
                        f"`{entry.import_command}`")
    expected = expected_hash(entry.official or {}, entry.official_file)
    known = _known_sha(entry) if expected.kind == "first-download" else None
    raw = cache_dir() / "downloads" / entry.official_file
    if raw.is_file() and not force:
        from .weights import sha256_file

        sha = sha256_file(raw)
    else:
        raw.unlink(missing_ok=True)
        sha = download(entry.download, raw, progress=progress)
    want = expected.value or known
    if want and not sha.startswith(want):
        raw.unlink(missing_ok=True)
        why = {"pinned": "the sha256 published for it", "hash-prefix": "the sha256 prefix in its file name"}.get(
            expected.kind, "the sha256 of its first download, recorded in " + str(_pins_file()))
        raise RunFailure(f"{entry.download}: {entry.official_file} has sha256 {sha[:16]}..., not {want[:16]}... "
                         f"({why}); it was deleted and nothing was imported (the file changed or was damaged "
                         "in transfer)")
    with open(raw, "rb") as f:
        if looks_like_html(f.read(1024)):
            raw.unlink()
            raise _html_refusal(entry.download, entry.official_file)

    with whole_folder(out, ".fetch-tmp") as tmp:
        import_model(raw, tmp, name=entry.name, force=True)   # tmp: an empty folder, which force may replace
        meta = R.read_metadata(tmp)
        record = {"url": entry.download, "file": entry.official_file, "sha256": sha,
                  "verified": expected.kind if expected.value or not known else "first-download-match",
                  "expected": expected.value or known}
        if (entry.official or {}).get("origin"):
            record["origin"] = entry.official["origin"]
        dataset = dict(meta.dataset or {})
        if entry.dataset and dataset.get("name") == "unknown":  # the file does not say; the registry does
            dataset.update(name=entry.dataset, display_name=entry.dataset, source=entry.dataset)
        write_record(tmp, meta.replace(dataset=dataset, extra={**meta.extra, "download": record}))
    if expected.kind == "first-download" and not known:
        _write_pin(entry.name, {"url": entry.download, "file": entry.official_file, "sha256": sha})
    return out
