"""Audit the installed environment for dependencies with known vulnerabilities (pip-audit), for CI.

Runs pip-audit on the Python environment this script runs in (the project's virtual environment under
``uv run``), against PyPI's vulnerability data by default, and exits:

* 1 when an installed package has a known vulnerability that ``.ci/audit-ignore`` does not accept, naming
  the package, its version, the advisory and the releases that fix it;
* 1 when the service answered for some packages and not for others (a partial audit is no audit);
* 0 when no unaccepted vulnerability is known.

Where the vulnerability service answers for no package at all (a machine that reaches PyPI's package
index but not its per-release JSON, or no network), nothing can be audited: the script says so plainly
and exits 0, or 1 with ``--require-service``. ``--ignore-file PATH`` reads another ignore list; other
arguments go to pip-audit (``--vulnerability-service osv --osv-url URL``, say).

``.ci/audit-ignore`` lists the advisories the project accepts, one a line: the advisory id, then why.
A line without a reason is refused, so nothing is ignored without one written down.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IGNORE_FILE = Path(__file__).resolve().parents[1] / ".ci" / "audit-ignore"


def accepted(path: Path) -> dict[str, str]:
    """The advisory ids of the ignore file, each with its reason; SystemExit on a line without one."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        ident, _, reason = text.partition(" ")
        if not reason.strip():
            raise SystemExit(f"dependency audit: {path}:{number}: {ident} is ignored without a reason")
        found[ident] = reason.strip()
    return found


def main(argv: list[str]) -> int:
    require_service = "--require-service" in argv
    passed = [arg for arg in argv if arg != "--require-service"]
    ignore_file = IGNORE_FILE
    if "--ignore-file" in passed:
        at = passed.index("--ignore-file")
        ignore_file = Path(passed[at + 1])
        del passed[at : at + 2]
    if not any(arg in ("-s", "--vulnerability-service") for arg in passed):
        passed = ["--vulnerability-service", "pypi", *passed]
    ignored = accepted(ignore_file)
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--skip-editable",
        "--progress-spinner",
        "off",
        "-f",
        "json",
    ]
    for ident in ignored:
        command += ["--ignore-vuln", ident]
    run = subprocess.run([*command, *passed], capture_output=True, text=True, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        error = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return unreachable(f"pip-audit could not run the audit: {error}", require_service)

    dependencies = report.get("dependencies", [])
    # The project itself is installed editable: it is this repository, not a dependency to look up.
    mine = [dep for dep in dependencies if "editable" in (dep.get("skip_reason") or "")]
    skipped = [dep for dep in dependencies if dep.get("skip_reason") and dep not in mine]
    audited = [dep for dep in dependencies if not dep.get("skip_reason")]
    vulnerable = [(dep, vuln) for dep in audited for vuln in dep.get("vulns", [])]
    if vulnerable:
        print(f"dependency audit: {len(vulnerable)} known vulnerabilities in installed packages:")
        for dep, vuln in vulnerable:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            also = f" ({aliases})" if aliases else ""
            print(f"  {dep['name']} {dep['version']}: {vuln['id']}{also}; fixed in: {fixes}")
        print(
            "Raise the package's lower bound in pyproject.toml to a fixed release, or, where the project "
            "accepts the advisory, add its id and the reason to .ci/audit-ignore."
        )
        return 1
    if skipped and not audited:
        return unreachable(
            f"the vulnerability service answered for none of {len(skipped)} packages "
            f"({skipped[0]['skip_reason']})",
            require_service,
        )
    if skipped:
        print(f"dependency audit: {len(skipped)} packages could not be audited:")
        for dep in skipped:
            print(f"  {dep['name']}: {dep['skip_reason']}")
        return 1
    note = f"; {len(ignored)} accepted advisories ignored" if ignored else ""
    print(f"dependency audit: {len(audited)} packages, no known vulnerabilities{note}")
    return 0


def unreachable(why: str, require_service: bool) -> int:
    print(f"dependency audit: NOT AUDITED: {why}.")
    if require_service:
        return 1
    print("Nothing was checked; run it where the vulnerability service is reachable.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
