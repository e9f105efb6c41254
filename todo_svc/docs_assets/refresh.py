"""Fetch the docs pages' vendored assets again from the npm registry, at the versions in VERSIONS.

`just docs-assets` runs it (it needs npm; installing the service does not). It `npm pack`s each
pinned package into a temporary folder (npm checks the tarball against the registry's integrity),
copies the files the pages use into static/, rewrites what would need more than `'self'` under
the docs CSP, and writes VERSIONS (with each tarball's integrity) and SHA256SUMS; `git diff` then
shows what changed. The rewrites, each of a literal expected exactly once (else it stops, and
someone reads the new bundle):

- swagger-ui.css: its `data:` images become files beside it (img/), so `img-src 'self'` holds;
- redoc.standalone.js: the footer's logo from the Redocly CDN becomes an empty `src` (the browser
  fires `error` without a request and ReDoc hides the image); the heading link icon, a `data:`
  image, becomes a file; the search worker, built from a `blob:` URL, becomes a file too
  (search.worker.js), so `worker-src` needs no `blob:`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"  # served at /docs/assets/ (todo_svc/api/docs.py)
SERVED_AT = "/docs/assets"  # for URLs in scripts, which resolve against the page, not the script
VERSIONS = HERE / "VERSIONS"
SUMS = HERE / "SHA256SUMS"
# package -> (folder in static/, {file in the package: file in the folder, or a glob: its name})
FILES: dict[str, tuple[str, dict[str, str]]] = {
    "swagger-ui-dist": (
        "swagger-ui",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui.css": "swagger-ui.css",
            "LICENSE": "LICENSE",
            "NOTICE": "NOTICE",
        },
    ),
    "redoc": (
        "redoc",
        {
            "bundles/redoc.standalone.js": "redoc.standalone.js",
            "bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
            "bundles/*.worker.js.LICENSE.txt": "",  # the search worker's, named as in the package
            "LICENSE": "LICENSE",
        },
    ),
}
_DATA_URL = re.compile(
    r"""url\((?P<quote>["']?)data:(?P<type>[\w+./-]+)(?P<params>[^,]*),(?P<data>.*?)(?P=quote)\)"""
)
_IMAGE_SUFFIX = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif"}
_JS_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0", "\n": ""}
REDOC_LOGO = '"https://cdn.redoc.ly/redoc/logo-mini.svg"'
REDOC_WORKER = "new Worker(URL.createObjectURL(new Blob(['"
REDOC_WORKER_FILE = "search.worker.js"


class Output:
    """The files one refresh writes into static/."""

    def __init__(self) -> None:
        self.written: list[Path] = []

    def write(self, path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.written.append(path)


def pinned() -> list[tuple[str, str]]:
    """(package, version) for each line of VERSIONS that is not a comment."""
    pins = []
    for line in VERSIONS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, version, *_ = line.split()
            pins.append((package, version))
    return pins


def npm_pack(package: str, version: str, into: Path) -> tuple[Path, str]:
    """The unpacked package folder and the tarball's integrity."""
    packed = subprocess.run(  # noqa: S603 - npm, with a pinned package name and version
        ["npm", "pack", "--json", "--pack-destination", str(into), f"{package}@{version}"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(packed.stdout)[0]
    if info["version"] != version:
        raise SystemExit(f"npm packed {package}@{info['version']}, not the pinned {version}")
    unpacked = into / package
    with tarfile.open(into / info["filename"]) as tarball:
        tarball.extractall(unpacked, filter="data")
    return unpacked / "package", str(info["integrity"])


def index_of_the_one(text: str, part: str, where: str) -> int:
    if text.count(part) != 1:
        raise SystemExit(f"{where}: expected {part[:80]!r} once; read the new version and adapt refresh.py")
    return text.index(part)


def replace_once(text: str, old: str, new: str, where: str) -> str:
    index_of_the_one(text, old, where)
    return text.replace(old, new)


def images_to_files(text: str, folder: Path, url_prefix: str, output: Output) -> str:
    """Each `url(data:image/...)` in `text` as a file in folder/img, referred to as url_prefix + name."""

    def to_file(match: re.Match[str]) -> str:
        data = match["data"]
        if match["quote"] == '"':
            data = data.replace('\\"', '"')  # a CSS string's escaped quotes
        if match["params"].endswith(";base64"):
            content = base64.b64decode(data)
        else:
            content = urllib.parse.unquote_to_bytes(data)
        name = f"img/{hashlib.sha256(content).hexdigest()[:16]}{_IMAGE_SUFFIX[match['type']]}"
        output.write(folder / name, content)
        return f"url({match['quote']}{url_prefix}{name}{match['quote']})"

    return _DATA_URL.sub(to_file, text)


def js_string_literal(text: str, start: int) -> tuple[str, int]:
    """The value of the single-quoted JavaScript string literal whose body begins at `start`, and
    the index of its closing quote."""
    end = start
    while text[end] != "'":
        end += 2 if text[end] == "\\" else 1

    def unescape(match: re.Match[str]) -> str:
        escaped = match[1]
        if escaped[0] in "xu" and len(escaped) > 1:
            return chr(int(escaped[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(escaped, escaped)

    return _JS_ESCAPE.sub(unescape, text[start:end]), end


def swagger_css(css: str, folder: Path, output: Output) -> str:
    # url() in a stylesheet resolves against the stylesheet: relative names work wherever it is served
    return images_to_files(css, folder, "", output)


def redoc_bundle(script: str, folder: Path, output: Output) -> str:
    where = "redoc.standalone.js"
    script = replace_once(script, REDOC_LOGO, '""', where)
    # url() in styled-components' rules resolves against the page: the absolute path it is served at
    script = images_to_files(script, folder, f"{SERVED_AT}/{folder.name}/", output)
    start = index_of_the_one(script, REDOC_WORKER, where)
    worker, end = js_string_literal(script, start + len(REDOC_WORKER))
    blob_url = script[start + len("new Worker(") : script.index(")", end) + 2]
    output.write(folder / REDOC_WORKER_FILE, worker.encode())
    version = hashlib.sha256(worker.encode()).hexdigest()[:12]  # the URL changes with it: cached for long
    worker_url = f"{SERVED_AT}/{folder.name}/{REDOC_WORKER_FILE}?v={version}"
    return replace_once(script, blob_url, json.dumps(worker_url), where)


REWRITES = {"swagger-ui/swagger-ui.css": swagger_css, "redoc/redoc.standalone.js": redoc_bundle}


def refresh() -> None:
    pins = pinned()
    integrity: dict[str, str] = {}
    output = Output()
    with tempfile.TemporaryDirectory() as scratch:
        for package, version in pins:
            source, integrity[package] = npm_pack(package, version, Path(scratch))
            folder_name, files = FILES[package]
            folder = STATIC / folder_name
            shutil.rmtree(folder, ignore_errors=True)  # all of it is vendored: nothing of ours in there
            for name, target in files.items():
                if "*" in name:
                    for match in sorted(source.glob(name)):
                        output.write(folder / match.name, match.read_bytes())
                    continue
                rewrite = REWRITES.get(f"{folder_name}/{target}")
                content = (source / name).read_bytes()
                if rewrite is not None:
                    content = rewrite(content.decode(), folder, output).encode()
                output.write(folder / target, content)
    comments = [line for line in VERSIONS.read_text().splitlines() if line.startswith("#")]
    widest = max(len(package) for package, _ in pins)
    longest = max(len(version) for _, version in pins)
    lines = [f"{package:<{widest}}  {version:<{longest}}  {integrity[package]}" for package, version in pins]
    VERSIONS.write_text("\n".join([*comments, *lines]) + "\n")
    SUMS.write_text(
        "".join(
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(HERE)}\n"
            for path in sorted(set(output.written))
        )
    )
    print(
        f"refreshed {', '.join(f'{p}@{v}' for p, v in pins)} in {STATIC}; now run tests/test_docs_browser.py"
        " (a new ReDoc may need another style hash in DOCS_CSP: the test's CSP violation names it)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    refresh()
