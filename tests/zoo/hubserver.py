"""Loopback Hub servers for the tests: our own write endpoint, and olah serving the result for reads.

``UploadHub`` answers the Hub API calls that huggingface_hub's ``create_repo``, ``create_branch``
and ``upload_folder`` make (create repo, validate card YAML, preupload, NDJSON commit, branch,
repo info) and stores every commit in a git repository per model, laid out as olah's
``mirrors-path`` expects (``ROOT/models/ORG/NAME``). ``Olah`` runs olah offline over that root, so
downloads go through a real Hub-compatible server. Both bind 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fileserver import Threaded

GITATTRIBUTES = "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
_REPO = r"(?P<org>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/?]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/commit/(?P<rev>[^/?]+)$"), "commit"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/branch/(?P<rev>[^/?]+)$"), "branch"),
    ("GET", re.compile(rf"^/api/models/{_REPO}/revision/(?P<rev>[^/?]+)$"), "info"),
    ("GET", re.compile(rf"^/api/models/{_REPO}$"), "info"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True, timeout=30,
                         env={**os.environ, "GIT_AUTHOR_NAME": "hub", "GIT_AUTHOR_EMAIL": "hub@127.0.0.1",
                              "GIT_COMMITTER_NAME": "hub", "GIT_COMMITTER_EMAIL": "hub@127.0.0.1", **(env or {})},
                         check=True)
    return out.stdout.decode().strip()


class UploadHub(Threaded):
    """The write half of the Hub API, storing commits in git repositories under ``root``."""

    def __init__(self, root: Path, token: str = "test-token") -> None:
        self.root = Path(root)
        self.token = token
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def _serve(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                hub.calls.append(f"{method} {path}")
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    return self._json(401, {"error": "Invalid credentials in Authorization header"})
                for m, rx, name in ROUTES:
                    match = rx.match(path)
                    if m == method and match:
                        n = int(self.headers.get("Content-Length") or 0)
                        body = self.rfile.read(n) if n else b""
                        with hub.lock:
                            code, payload = getattr(hub, name)(body, **match.groupdict())
                        return self._json(code, payload)
                self._json(404, {"error": f"no route {method} {path}"})

            def _json(self, code: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code >= 400:
                    self.send_header("X-Error-Message", str(payload.get("error", "")))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.timeout = 10
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------------------------ repos
    def repo_dir(self, org: str, name: str) -> Path:
        return self.root / "models" / org / name

    def create_repo(self, body: bytes) -> tuple[int, dict]:
        req = json.loads(body or b"{}")
        org, name = req.get("organization"), req.get("name")
        if req.get("type", "model") != "model" or not org or not name:
            return 400, {"error": "only org/name model repos here"}
        repo = self.repo_dir(org, name)
        if repo.exists():
            return 409, {"error": "You already created this model repo", "url": f"{self.url}/{org}/{name}"}
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        # The Hub starts every repo with a commit holding .gitattributes.
        (repo / ".gitattributes").write_text(GITATTRIBUTES)
        git(repo, "add", ".gitattributes")
        git(repo, "commit", "-q", "-m", "initial commit")
        return 200, {"url": f"{self.url}/{org}/{name}", "name": f"{org}/{name}"}

    def validate_yaml(self, body: bytes) -> tuple[int, dict]:
        from progan_zoo.zoo.card import parse_card

        content = json.loads(body or b"{}").get("content", "")
        try:
            parse_card(content)
        except Exception as exc:
            return 400, {"errors": [{"message": str(exc)}], "warnings": []}
        return 200, {"errors": [], "warnings": []}

    def _blob(self, repo: Path, rev: str, path: str) -> str | None:
        try:
            return git(repo, "rev-parse", f"{rev}:{path}")
        except subprocess.CalledProcessError:
            return None

    def preupload(self, body: bytes, org: str, name: str, rev: str) -> tuple[int, dict]:
        repo = self.repo_dir(org, name)
        if not repo.exists():
            return 404, {"error": "Repository not found"}
        files = json.loads(body)["files"]
        # Everything goes inline ("regular"): our server has no LFS/Xet storage; the real Hub
        # answers "lfs" for weights and huggingface_hub uploads them through its storage instead.
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                "oid": self._blob(repo, rev, f["path"])} for f in files]}

    def commit(self, body: bytes, org: str, name: str, rev: str) -> tuple[int, dict]:
        repo = self.repo_dir(org, name)
        if not repo.exists():
            return 404, {"error": "Repository not found"}
        try:
            parent = git(repo, "rev-parse", f"refs/heads/{rev}")
        except subprocess.CalledProcessError:
            return 404, {"error": f"Revision Not Found: {rev}"}
        lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        if header.get("parentCommit") and not parent.startswith(header["parentCommit"]):
            return 412, {"error": "parent commit is not the head of the branch"}
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            git(repo, "read-tree", parent, env=env)
            for item in lines:
                key, v = item["key"], item["value"]
                if key == "file":
                    data = base64.b64decode(v["content"])
                    blob = git(repo, "hash-object", "-w", "--stdin", input=data)
                    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{v['path']}", env=env)
                elif key == "deletedFile":
                    git(repo, "update-index", "--force-remove", v["path"], env=env)
                elif key in ("lfsFile", "deletedFolder"):
                    return 400, {"error": f"{key} operations are not supported by this test server"}
            tree = git(repo, "write-tree", env=env)
        msg = header.get("summary", "") + ("\n\n" + header["description"] if header.get("description") else "")
        oid = git(repo, "commit-tree", tree, "-p", parent, "-m", msg)
        git(repo, "update-ref", f"refs/heads/{rev}", oid, parent)
        return 200, {"commitUrl": f"{self.url}/{org}/{name}/commit/{oid}", "commitOid": oid,
                     "pullRequestUrl": None}

    def branch(self, body: bytes, org: str, name: str, rev: str) -> tuple[int, dict]:
        repo = self.repo_dir(org, name)
        if not repo.exists():
            return 404, {"error": "Repository not found"}
        if self._blob(repo, f"refs/heads/{rev}", "") is not None:
            return 409, {"error": "Reference already exists"}
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        git(repo, "branch", rev, start)
        return 200, {}

    def info(self, body: bytes, org: str, name: str, rev: str = "main") -> tuple[int, dict]:
        repo = self.repo_dir(org, name)
        if not repo.exists():
            return 404, {"error": "Repository not found"}
        sha = git(repo, "rev-parse", rev)
        files = git(repo, "ls-tree", "-r", "--name-only", sha).splitlines()
        return 200, {"id": f"{org}/{name}", "sha": sha, "private": False,
                     "siblings": [{"rfilename": f} for f in files]}


class Olah:
    """olah (the PyPI Hub mirror) serving ``mirrors`` offline on a loopback port, as a subprocess."""

    def __init__(self, mirrors: Path, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "olah.toml"
        self.config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.workdir / "repos"}"\n'
            f'mirrors-path = ["{Path(mirrors)}"]\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            # Never reach the real Hub: everything comes from the local mirrors.
            'hf-netloc = "127.0.0.1:9"\n'
            'hf-lfs-netloc = "127.0.0.1:9"\n'
            "[accessibility]\n"
            "offline = true\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Olah":
        log = open(self.workdir / "olah.out", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from olah.server import main; sys.argv[0] = 'olah-cli'; main()",
             "--config", str(self.config), "--log-path", str(self.workdir / "logs")],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah exited with {self.proc.returncode}: "
                                   f"{(self.workdir / 'olah.out').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/api/models/none/none", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # it answers: up
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"olah did not start within 60 s: {(self.workdir / 'olah.out').read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
