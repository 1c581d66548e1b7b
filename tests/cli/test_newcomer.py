"""The CLI as a newcomer meets it (issue 17): a scripted pass of bad invocations, global options in
every position, one region convention, usage errors exit 64, help that tells the truth.

Every case runs the real command line in-process (`hcops` fixture) and checks the exit code, the
message and that no traceback leaks out; the Ctrl-C cases run the real executable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.app import command
from cli.common import walk
from tests.conftest import CliResult

Hcops = Callable[..., CliResult]
HCOPS = Path(sys.executable).parent / "hcops"


def _clean(res: CliResult) -> None:
    assert "Traceback" not in res.stdout + res.stderr
    assert "internal error" not in res.stderr


# ---------------------------------------------------------------- bad invocations: one exit code each

@pytest.mark.parametrize(("args", "code", "needle"), [
    (("inventory", "show"), 64, "no region given"),
    (("infra", "preview"), 64, "no region given"),
    (("deploy",), 64, "no region given"),
    (("monitor", "sla"), 64, "no region given"),
    (("lab", "cut-link", "dedicated-line"), 64, "no region given"),  # no silent default to `lab`
    (("-o", "yaml", "inventory", "show", "lab"), 64, "'yaml' is not one of 'table', 'json'"),
    (("inventory", "graph", "lab", "--format", "png"), 64, "'png' is not one of 'mermaid', 'dot'"),
    (("monitor", "sla", "--region", "lab", "--period", "week"), 64, "'week' is not one of 'month', 'quarter', 'year'"),
    (("monitor", "plan", "--region", "lab", "--url", "http://[::1"), 64, "is not a valid URL"),
    (("monitor", "plan", "--region", "lab", "--url", "ftp://zbx"), 64, "is not an http(s) URL"),
    (("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1", "--reason", "x", "--minutes", "-5"),
     64, "greater than or equal to 5"),
    (("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db1", "--reason", "x", "--minutes",
      "99999"), 64, "--minutes"),
    (("inventory", "validate", "--bogus"), 64, "No such option"),
    (("inventory", "frobnicate"), 64, "No such command"),
    (("lab", "stop-host", "--region", "lab"), 64, "Missing argument"),
    (("-r", "nosuch", "inventory", "validate"), 1, "unknown region 'nosuch'"),
    (("inventory", "show", "lab", "--region", "example-city"), 64, "two regions given"),
    (("infra", "down", "--region", "lab"), 1, "needs confirmation"),
])
def test_bad_invocation_has_one_documented_exit_code(hcops: Hcops, args: tuple[str, ...], code: int,
                                                     needle: str) -> None:
    res = hcops(*args)
    assert res.code == code, (args, res.stderr)
    assert needle in res.stderr, res.stderr
    _clean(res)
    if code == 64 and "no region given" in needle:
        assert "--region REGION" in res.stderr and "-h' for help" in res.stderr


def test_checks_come_before_the_network(hcops: Hcops, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value or an unknown host fails at once: no connection attempt, no retry messages."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/api_jsonrpc.php"
    monkeypatch.setenv("HCOPS_ZABBIX_TOKEN", "x")
    started = time.monotonic()
    res = hcops("monitor", "maintenance", "start", "--region", "lab", "--hosts", "db9", "--reason", "x",
                "--url", closed, "--retries", "3")
    assert res.code == 1 and "unknown host(s) db9" in res.stderr
    assert "attempt" not in res.stderr and "unreachable" not in res.stderr
    for cmd in (("monitor", "sla"), ("monitor", "maintenance", "list"), ("monitor", "maintenance", "stop",
                                                                         "--hosts", "db1")):
        unreachable = hcops(*cmd, "--region", "lab", "--url", closed, "--retries", "0", "--timeout", "1")
        assert unreachable.code == 1 and "raise --timeout" in unreachable.stderr  # and the option exists
    assert time.monotonic() - started < 60


# ---------------------------------------------------------------- global options anywhere

@pytest.mark.parametrize("args", [
    ("-o", "json", "inventory", "show", "lab"),
    ("inventory", "-o", "json", "show", "lab"),
    ("inventory", "show", "-o", "json", "lab"),
    ("inventory", "show", "lab", "-o", "json"),
    ("inventory", "show", "lab", "--output", "json"),
    ("-r", "lab", "-o", "json", "inventory", "show"),
    ("inventory", "show", "-r", "lab", "-o", "json"),
    ("inventory", "show", "--output", "json", "--region", "lab", "-v"),
])
def test_global_options_in_every_position(hcops: Hcops, args: tuple[str, ...]) -> None:
    res = hcops(*args)
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["region"] == "lab"


def test_region_option_anywhere_on_every_command(hcops: Hcops) -> None:
    """The fix text says `--region REGION`; it is true for every command that works on a region."""
    for args in (("-r", "lab", "infra", "preview", "--offline"), ("infra", "-r", "lab", "preview"),
                 ("infra", "preview", "--region", "example-city", "--offline", "--summary")):
        res = hcops(*args)
        assert res.code in (0, 2), (args, res.stderr)
        _clean(res)
    with_option = hcops("inventory", "validate", "--region", "lab")
    assert with_option.code == 0 and "lab:" in with_option.stdout and "example-city" not in with_option.stdout


def test_dot_is_a_path_and_a_name_is_a_name(hcops: Hcops, monkeypatch: pytest.MonkeyPatch, repo: Path,
                                            tmp_path: Path) -> None:
    monkeypatch.chdir(repo / "inventories" / "lab")
    here = hcops("inventory", "validate", ".")
    assert here.code == 0 and "7 hosts" in here.stdout, here.stderr
    up = hcops("inventory", "validate", "..")
    assert up.code == 1 and "holds regions (example-city, lab); it is not one region" in up.stderr
    assert "Traceback" not in up.stderr and up.stderr.count("fix:") == 1
    sibling = hcops("inventory", "validate", "../example-city")
    assert sibling.code == 0 and "18 counties" in sibling.stdout
    # regions kept outside the repository: a path, or HCOPS_INVENTORIES and the name
    outside = tmp_path / "regions"
    shutil.copytree(repo / "inventories" / "lab", outside / "lab")
    (outside / "lab" / "region.yml").write_text((outside / "lab" / "region.yml").read_text()
                                                .replace("name: lab", "name: mine", 1))
    (outside / "lab").rename(outside / "mine")
    monkeypatch.chdir(tmp_path)
    assert hcops("inventory", "validate", "regions/mine").code == 0
    monkeypatch.chdir(outside)
    assert hcops("inventory", "validate", "mine").code == 0  # not a known name, but a directory here
    monkeypatch.chdir(repo)
    assert hcops("inventory", "validate", "mine").code == 1
    monkeypatch.setenv("HCOPS_INVENTORIES", str(outside))
    found = hcops("inventory", "validate", "mine")
    assert found.code == 0 and "mine: 2 sites" in found.stdout


def test_a_file_is_not_a_region(hcops: Hcops, repo: Path) -> None:
    res = hcops("inventory", "validate", str(repo / "inventories" / "lab" / "region.yml"))
    assert res.code == 1 and "is a file, not a directory" in res.stderr and "region.yml" in res.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody")
def test_unreadable_region_directory_says_permission_denied(repo: Path, tmp_path: Path) -> None:
    """Run as `nobody`: a region directory it may not read, and one below a directory it may not search."""
    import tempfile

    open_parent = Path(tempfile.mkdtemp(prefix="hcops-perm-"))
    try:
        open_parent.chmod(0o755)
        for parent in (open_parent, tmp_path):  # pytest's tmp_path lies below a 0700 directory
            region = parent / "lab"
            shutil.copytree(repo / "inventories" / "lab", region)
            region.chmod(0o700)  # root's only
            proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(HCOPS),
                                   "inventory", "validate", str(region)], capture_output=True, text=True,
                                  timeout=120, env={**os.environ, "HOME": "/"}, cwd="/", check=False)
            assert proc.returncode == 1, proc.stderr
            assert f"permission denied reading region directory {region}" in proc.stderr
            assert "no region files" not in proc.stderr and "Traceback" not in proc.stderr
            assert "internal error" not in proc.stderr
    finally:
        shutil.rmtree(open_parent)


# ---------------------------------------------------------------- what a person sees

def test_plurals(hcops: Hcops) -> None:
    res = hcops("inventory", "validate")
    assert "lab: 2 sites, 7 hosts, 7 services, 1 county" in res.stdout
    assert "example-city: 20 sites, 29 hosts, 24 services, 18 counties" in res.stdout
    assert "1 counties" not in res.stdout and "1 hosts" not in res.stdout


def test_show_at_80_columns_loses_nothing(hcops: Hcops, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import common
    from inventories.loader import load_region

    monkeypatch.setattr(common.stdout, "_width", 80)
    res = hcops("inventory", "show", "example-city")
    assert res.code == 0
    assert "…" not in res.stdout
    flat = res.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    region = load_region("example-city")
    for name, ref in region.hosts.items():
        for addr in ref.spec.addresses.values():
            assert f"{name}@{addr}" in flat or str(addr) in res.stdout, (name, addr)


def test_help_has_no_placeholders_and_ends_with_examples(hcops: Hcops) -> None:
    """Every command of the tree, including those other sub-apps add later."""
    problems = []
    for path, cmd in walk(command()):
        args = path.split()[1:]
        res = hcops(*args, "--help")
        text = res.stdout
        if res.code != 0:
            problems.append(f"{path}: --help exit {res.code}")
        if "<bool>" in text:
            problems.append(f"{path}: <bool> placeholder")
        if "…" in text:
            problems.append(f"{path}: help text cut at {len(text.splitlines()[1])} columns")
        if not hasattr(cmd, "commands"):
            if "Examples:" not in text or "$ hcops " not in text:
                problems.append(f"{path}: no example")
            for param in cmd.params:
                if param.param_type_name == "option" and not getattr(param, "help", None):
                    problems.append(f"{path}: option {param.opts[0]} has no help")
                if param.param_type_name == "argument" and param.metavar != param.metavar.upper():
                    problems.append(f"{path}: argument {param.metavar} not written as a person writes it")
    assert not problems, "\n".join(problems)


def test_deploy_help_has_exit_codes_and_no_phantom_command(hcops: Hcops) -> None:
    res = hcops("deploy", "--help")
    assert res.code == 0
    assert "Usage: hcops deploy [OPTIONS]" in res.stdout and "COMMAND" not in res.stdout
    flat = " ".join(res.stdout.split())
    assert "Exit codes: 0 converged (with --check: nothing to change); 2 --check found changes" in flat
    assert "64 usage error" in flat


def test_shell_completion_installs_and_completes(hcops: Hcops, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHELL", "/bin/bash")
    inst = hcops("--install-completion", "bash")
    assert inst.code == 0, inst.stderr
    assert "hcops" in (tmp_path / ".bashrc").read_text()
    # what bash asks when the user presses TAB after `hcops inv`
    monkeypatch.setenv("_HCOPS_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "hcops inv")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit):
        command().main(args=[], prog_name="hcops")
    assert "inventory" in capsys.readouterr().out


def test_verdict_says_why_a_low_sli_is_still_ok() -> None:
    from datetime import UTC, datetime

    from cli.monitor import _verdict
    from monitoring.sla import SliRow

    start = datetime(2026, 12, 1, tzinfo=UTC)
    young = SliRow(slo="platform", service="front", target=99.95, period="month", period_from=start,
                   period_to=start, uptime_min=3.63, downtime_min=0.07, sli=98.2, budget_min=21.9)
    assert _verdict(young) == ("ok: 0.1 of 21.9 min budget used; the SLI is below 99.95% over only 3.7 observed "
                               "min, but the window's budget is not spent")
    spent = SliRow(slo="platform", service="front", target=99.95, period="month", period_from=start,
                   period_to=start, uptime_min=40000, downtime_min=30.0, sli=99.9, budget_min=21.9)
    assert _verdict(spent) == "breached: 30.0 of 21.9 min budget used"


def test_lab_engine_neither_prints_nor_asks(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Layering: the lab engine imports no typer and nothing of cli/; destroy acts only on a decision."""
    import ast

    from infra.lab import ops
    from infra.providers import InfraOptions
    from inventories.errors import HcopsError
    from inventories.loader import load_region

    for module in sorted((repo / "infra" / "lab").glob("*.py")):
        tree = ast.parse(module.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] in ("typer", "cli", "rich")}, (module, names)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv("HCOPS_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(HcopsError, match="needs confirmation"):
        ops.destroy(load_region("lab"), InfraOptions(yes=False))
    assert not (tmp_path / "state").exists()  # nothing touched, not even the lock


# ---------------------------------------------------------------- drawings

def test_graph_json_is_nodes_and_edges(hcops: Hcops) -> None:
    res = hcops("-o", "json", "inventory", "graph", "lab")
    assert res.code == 0
    data = json.loads(res.stdout)
    ids = {n["id"] for n in data["nodes"]}
    assert {"site:local-dc", "site:cloud", "host:db1", "net:cloud.vpc"} <= ids
    links = [e for e in data["edges"] if e["type"] == "link"]
    assert links == [{"type": "link", "name": "dedicated-line", "from": "site:local-dc", "to": "site:cloud",
                      "kind": "dedicated_line", "bandwidth_mbit": 100, "encryption": "wireguard"}]
    assert all(e["from"] in ids and e["to"] in ids for e in data["edges"])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_city_drawing_is_readable(hcops: Hcops, tmp_path: Path) -> None:
    """The example city rendered: every site is drawn, the lines end on box edges (compound), and
    no county box is crossed by a line (the 18 alike county lines are one bundle)."""
    import xml.etree.ElementTree as ET

    from inventories.loader import load_region

    svg, png = tmp_path / "city.svg", tmp_path / "city.png"
    res = hcops("inventory", "graph", "example-city", "--format", "mermaid", "--svg", str(svg), "--png", str(png))
    assert res.code == 0, res.stderr
    assert res.stdout.startswith("flowchart LR")  # the text asked for; the pictures come from Graphviz
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    ns = {"s": "http://www.w3.org/2000/svg"}
    root = ET.parse(svg).getroot()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    region = load_region("example-city")
    for site in region.sites:
        assert site in texts, site
    assert "18 dedicated lines, 100 Mbit/s ipsec each" in texts
    boxes = {}
    for g in root.iterfind(".//s:g[@class='cluster']", ns):
        title = g.find("s:title", ns).text
        pts = [tuple(map(float, p.split(","))) for p in g.find("s:path", ns).get("d").replace("M", " ")
               .replace("C", " ").split() if "," in p] if g.find("s:path", ns) is not None else []
        if not pts:
            poly = g.find("s:polygon", ns).get("points").split()
            pts = [tuple(map(float, p.split(","))) for p in poly]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        boxes[title] = (min(xs), min(ys), max(xs), max(ys))
    counties = {f"cluster_{c}" for c, s in region.sites.items() if s.kind == "county_hospital"}
    assert counties <= set(boxes)
    heavy = []
    for g in root.iterfind(".//s:g[@class='edge']", ns):
        path = g.find("s:path", ns)
        if path is not None and float(path.get("stroke-width", "1")) >= 2:
            d = path.get("d").replace("M", " ").replace("C", " ")
            heavy.append([tuple(map(float, p.split(","))) for p in d.split() if "," in p])
    assert len(heavy) == 2  # the city-cloud line and the county bundle
    for pts in heavy:
        for i in range(0, len(pts) - 3, 3):  # each cubic Bezier segment, sampled along the curve
            p0, c1, c2, p1 = pts[i:i + 4]
            for step in range(11):
                t = step / 10
                x, y = (((1 - t) ** 3) * p0[k] + 3 * ((1 - t) ** 2) * t * c1[k] + 3 * (1 - t) * t * t * c2[k]
                        + t ** 3 * p1[k] for k in (0, 1))
                for name in counties:
                    x0, y0, x1, y1 = boxes[name]
                    assert not (x0 + 2 < x < x1 - 2 and y0 + 2 < y < y1 - 2), f"a line crosses {name}"


# ---------------------------------------------------------------- Ctrl-C

def _before_hcops(code: int, err: bytes) -> bool:
    """Interrupted inside the interpreter's own start-up (site, the script's first import), before
    any hcops code ran: outside what hcops can handle, so such a try is repeated later."""
    return b"interrupted" not in err and (code == -signal.SIGINT or (
        b"Traceback" in err and b"/cli/" not in err.replace(b"bin/hcops", b"")))


@pytest.mark.slow
def test_ctrl_c_during_offline_preview_exits_130_promptly() -> None:
    """Three tries that land in hcops: during its imports, early in the mock run, later in it.
    (Twenty tries: benchmarks/ctrl_c_preview.py.)"""
    landed = []
    delay = 0.6
    while len(landed) < 3 and delay < 12:
        proc = subprocess.Popen([str(HCOPS), "infra", "preview", "--region", "example-city", "--offline"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is not None:  # a fast machine: the preview was done; enough tries landed before
            proc.communicate()
            break
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
        delay *= 1.8
        if _before_hcops(proc.returncode, err):
            continue
        landed.append(delay)
        assert proc.returncode == 130, (delay, proc.returncode, err[-2000:])
        assert b"interrupted" in err and b"Traceback" not in err + out, err[-2000:]
        assert b"resources to create" not in out  # no plan printed after the user said stop
        assert took < 10, took  # a hang guard (the watchdog ends it 1.5 s after the signal at the latest)
    assert len(landed) >= 2, landed
