"""No credentials in the repository: a scan of every git-tracked file, `.env` ignored, `.env.example` complete.

The scan also covers files git does not ignore but that are not committed yet, so a key is caught before
its commit. Key-looking literals in this file are built by concatenation so that the scan never matches it.
"""

from __future__ import annotations

import math
import random
import re
import string
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DASHES = "-" * 5
MAX_BYTES = 5_000_000

# (what, pattern) pairs; each pattern matches one line.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key (PEM)", re.compile(DASHES + r"BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY" + DASHES)),
    ("Google service-account private_key", re.compile(r'"private_key(?:_id)?"\s*:\s*"[^"]{16,}')),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
)
# `password = "..."`, `API_TOKEN: ...`, `--secret=...`: judged by the value (long, mixed, high entropy).
ASSIGNMENT = re.compile(
    r"(?i)(?:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key|auth[_-]?key)\w*[\"']?\s*[:=]\s*[\"']?"
    r"([A-Za-z0-9+/=_\-.~]{20,})"
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: looks like a {self.what}"


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secret_like(value: str) -> bool:
    """A random-looking credential value, not a name, a path or a placeholder."""
    has_digit = any(c.isdigit() for c in value)
    has_letter = any(c.isalpha() for c in value)
    path_like = "/" in value and re.fullmatch(r"[a-z0-9_\-.~/]+", value) is not None
    return has_digit and has_letter and not path_like and entropy(value) >= 3.5


def scan_text(text: str, path: str) -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in PATTERNS:
            if pattern.search(line):
                findings.append(Finding(path, number, what))
        if any(secret_like(match.group(1)) for match in ASSIGNMENT.finditer(line)):
            findings.append(Finding(path, number, "credential assignment with a random-looking value"))
    return findings


def scan_file(path: Path, name: str | None = None) -> list[Finding]:
    """Findings in one file; binary and very large files are skipped."""
    data = path.read_bytes()[:MAX_BYTES]
    if b"\0" in data[:8192]:
        return []
    return scan_text(data.decode("utf-8", errors="replace"), name or str(path))


def repository_files() -> list[str]:
    """Tracked files plus files git would add (not ignored), as paths relative to the repository."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return sorted({name for name in result.stdout.decode().split("\0") if name})


def git_available() -> bool:
    try:
        return subprocess.run(["git", "rev-parse"], cwd=REPO, capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


needs_git = pytest.mark.skipif(not git_available(), reason="not a git checkout (or git is missing)")


@needs_git
def test_no_tracked_file_contains_a_key_or_token() -> None:
    names = repository_files()
    assert "pyproject.toml" in names and "tests/test_secrets.py" in names
    findings = [f for name in names if (REPO / name).is_file() for f in scan_file(REPO / name, name)]
    assert findings == [], "possible credentials:\n" + "\n".join(map(str, findings))


def random_text(alphabet: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_the_scan_catches_fake_keys(tmp_path: Path) -> None:
    upper_digits = string.ascii_uppercase + string.digits
    alnum = string.ascii_letters + string.digits
    pem = DASHES + "BEGIN RSA " + "PRIVATE KEY" + DASHES
    lines = {
        1: "# settings",
        2: pem,
        3: "aws_id = " + "AK" + "IA" + random_text(upper_digits, 16, 1),
        4: '  "private' + '_key": "' + DASHES + "BEGIN PRIVATE KEY" + DASHES + '\\nMIIEv",',
        5: "GITHUB=" + "gh" + "p_" + random_text(alnum, 36, 2),
        6: "url = 'https://x.example/?key=" + "AI" + "za" + random_text(alnum, 35, 3) + "'",
        7: "SLACK = " + "xo" + "xb-" + random_text(string.digits, 12, 4) + "-" + random_text(alnum, 24, 5),
        8: "db_pass" + 'word = "' + random_text(alnum, 32, 6) + '"',
        9: "print('nothing here')",
    }
    path = tmp_path / "leaky.py"
    path.write_text("\n".join(lines[n] for n in sorted(lines)) + "\n")
    found = {(f.line, f.what) for f in scan_file(path, "leaky.py")}
    assert {line for line, _ in found} == set(range(2, 9))
    assert (2, "private key (PEM)") in found and (3, "AWS access key id") in found
    assert (4, "Google service-account private_key") in found and (5, "GitHub token") in found
    assert (6, "Google API key") in found and (7, "Slack token") in found
    assert str(scan_file(path, "leaky.py")[0]) == "leaky.py:2: looks like a private key (PEM)"


def test_the_scan_leaves_names_placeholders_and_low_entropy_values_alone() -> None:
    text = "\n".join(
        [
            "MEDBENCH_GCS_BUCKET=",
            'token = os.environ["GITHUB_TOKEN_FOR_THE_RELEASE"]',
            "password = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
            "secret_name: projects/medbench/secrets/service-account/versions/latest",
            "access_key = settings.access_key_from_environment",
            "tokenizer = make_tokenizer(vocabulary_size_20000)",
            "token_file = data/cache/v2/tokens-2024-05-17.json",
        ]
    )
    assert scan_text(text, "fine.txt") == []


@needs_git
def test_dotenv_is_git_ignored_and_not_tracked() -> None:
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=REPO).returncode == 1
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""


def test_env_example_documents_the_other_environment_variables_read_in_src() -> None:
    """MEDBENCH_* names are checked in test_project.py; this covers the rest (os.environ / os.getenv)."""
    reads = re.compile(r"""os\.(?:environ(?:\.get|\.setdefault|\.pop)?\(|environ\[|getenv\()\s*(["']?)(\w+)\1""")
    read = set()
    for path in (REPO / "src").rglob("*.py"):
        text = path.read_text()
        constants = dict(re.findall(r"""^(\w+)\s*=\s*["']([A-Z][A-Z0-9_]*)["']\s*$""", text, re.M))
        for quote, name in reads.findall(text):
            read.add(name if quote else constants.get(name, name))
    read = {name for name in read if name.isupper()}
    assert read, "no os.environ reads found in src/: the scan is broken"
    documented = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", (REPO / ".env.example").read_text()))
    assert sorted(read - documented) == []
