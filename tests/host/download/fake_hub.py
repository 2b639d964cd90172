#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub, for llmhost's download tests. Standard library only.

Usage: fake_hub.py ROOT

Serves ROOT laid out like the hub, revision "main" only:
  ROOT/models/ORG/NAME/<files>      ROOT/datasets/ORG/NAME/<files>
  GET /api/{models|datasets}/ORG/NAME/revision/main   the listing ({"siblings": [...]}, with
                                                      size and lfs.sha256 as with ?blobs=true)
  GET /ORG/NAME/resolve/main/FILE                     small files directly; LFS files (by suffix)
  GET /datasets/ORG/NAME/resolve/main/FILE            302 to /cdn/... as the hub sends to its CDN
  GET /cdn/{models|datasets}/ORG/NAME/FILE            the bytes, honouring "Range: bytes=N-"

Behaviour comes from ROOT/hub.json, read on every request (keys are paths under ROOT):
  {"gated": {"models/ORG/NAME": "TOKEN"},        resolve wants "Authorization: Bearer TOKEN"
   "cut": {"models/ORG/NAME/FILE": [BYTES, TIMES]},  the first TIMES transfers of FILE stop
                                                     after BYTES body bytes (connection closed)
   "wrong_sha256": ["models/ORG/NAME/FILE"],     the listing gives a wrong lfs.sha256
   "ignore_range": true,                         answer 200 with the whole file to a Range
   "cdn_host": "localhost",                      redirect to this host name instead of ours
   "extra_siblings": {"models/ORG/NAME": [{"rfilename": "../evil"}]}}

Prints the port on the first line of stdout, then serves until killed. Every request is
appended to ROOT/requests.log as one JSON object per line: method, path, range, has_auth.
"""
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".jsonl", ".parquet")
ZERO_SHA = "0" * 64

ROOT = os.path.abspath(sys.argv[1])
LOCK = threading.Lock()
CUTS_DONE = {}  # file key -> transfers cut so far


def config():
    try:
        with open(os.path.join(ROOT, "hub.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def is_lfs(name):
    return name.endswith(LFS_SUFFIXES)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def listing(repo_key, repo_id, cfg):
    repo_dir = os.path.join(ROOT, repo_key)
    siblings = []
    for dirpath, _, filenames in os.walk(repo_dir):
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            name = os.path.relpath(path, repo_dir).replace(os.sep, "/")
            size = os.path.getsize(path)
            entry = {"rfilename": name, "size": size, "blobId": "b" * 40}
            if is_lfs(name):
                sha = sha256_of(path)
                if repo_key + "/" + name in cfg.get("wrong_sha256", []):
                    sha = ZERO_SHA if sha != ZERO_SHA else "1" * 64
                entry["lfs"] = {"sha256": sha, "size": size, "pointerSize": 134}
            siblings.append(entry)
    siblings.extend(cfg.get("extra_siblings", {}).get(repo_key, []))
    return {"id": repo_id, "sha": "c" * 40, "siblings": siblings}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a cut is a closed socket

    def log_message(self, *args):
        pass

    def log_request_line(self):
        entry = {
            "method": self.command,
            "path": self.path,
            "range": self.headers.get("Range"),
            "has_auth": "Authorization" in self.headers,
        }
        with LOCK, open(os.path.join(ROOT, "requests.log"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        self.reply(status, message.encode(),
                   {"X-Error-Code": code, "X-Error-Message": message,
                    "Content-Type": "text/plain"})

    def do_GET(self):
        self.log_request_line()
        cfg = config()
        path = urllib.parse.urlsplit(self.path).path
        match = re.fullmatch(r"/api/(models|datasets)/(.+)/revision/([^/]+)", path)
        if match:
            return self.serve_listing(cfg, match.group(1), match.group(2),
                                      urllib.parse.unquote(match.group(3)))
        match = re.fullmatch(r"/cdn/((?:models|datasets)/[^/]+/[^/]+)/(.+)", path)
        if match:
            return self.serve_file(cfg, match.group(1), urllib.parse.unquote(match.group(2)))
        match = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            kind = "datasets" if match.group(1) else "models"
            return self.serve_resolve(cfg, kind + "/" + match.group(2),
                                      urllib.parse.unquote(match.group(3)),
                                      urllib.parse.unquote(match.group(4)))
        self.error(404, "NotFound", "no such route")

    def check_repo(self, repo_key, revision):
        if not os.path.isdir(os.path.join(ROOT, repo_key)):
            self.error(404, "RepoNotFound", "Repository not found")
            return False
        if revision != "main":
            self.error(404, "RevisionNotFound", "Invalid rev id: " + revision)
            return False
        return True

    def serve_listing(self, cfg, kind, repo_id, revision):
        repo_key = kind + "/" + repo_id
        if not self.check_repo(repo_key, revision):
            return
        body = json.dumps(listing(repo_key, repo_id, cfg)).encode()
        self.reply(200, body, {"Content-Type": "application/json"})

    def serve_resolve(self, cfg, repo_key, revision, name):
        if not self.check_repo(repo_key, revision):
            return
        token = cfg.get("gated", {}).get(repo_key)
        if token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self.error(401, "GatedRepo", "Access to this repo is restricted.")
            if auth != "Bearer " + token:
                return self.error(403, "GatedRepo", "Your token has no access to this repo.")
        if not os.path.isfile(os.path.join(ROOT, repo_key, name)):
            return self.error(404, "EntryNotFound", "Entry not found")
        if not is_lfs(name):
            return self.serve_file(cfg, repo_key, name)
        host = cfg.get("cdn_host", "127.0.0.1")
        location = "http://%s:%d/cdn/%s/%s" % (host, self.server.server_address[1], repo_key,
                                               urllib.parse.quote(name))
        self.reply(302, b"", {"Location": location})

    def serve_file(self, cfg, repo_key, name):
        key = repo_key + "/" + name
        path = os.path.join(ROOT, key)
        if not os.path.isfile(path):
            return self.error(404, "EntryNotFound", "Entry not found")
        with open(path, "rb") as f:
            data = f.read()
        status, start = 200, 0
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        range_header = self.headers.get("Range")
        if range_header and not cfg.get("ignore_range", False):
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            if not match:
                return self.error(400, "BadRange", "only 'bytes=N-' is supported")
            start = int(match.group(1))
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        cut_bytes, cut_times = cfg.get("cut", {}).get(key, [0, 0])
        with LOCK:
            cut = CUTS_DONE.get(key, 0) < cut_times and cut_bytes < len(body)
            if cut:
                CUTS_DONE[key] = CUTS_DONE.get(key, 0) + 1
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut_bytes] if cut else body)
        self.wfile.flush()


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
