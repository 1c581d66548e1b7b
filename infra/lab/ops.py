"""The lab provider's operations for `hcops infra`: observe, plan, then converge.

`up` compares what exists with what the region model asks for, prints that plan, then makes
only the difference, so a second run does nothing and a half-built lab (a crashed run, a
killed container, a deleted bridge) is repaired in place. `destroy` removes everything the
lab made, found by name and by alias even when the state files are gone.

Like every engine, this module never prints, prompts or exits: each operation returns a result
object (`LabPlanResult`, `LabUpResult`, `LabDestroyResult`, `LabStatusResult`,
`LabOutputsResult`) with its exit code, and `cli/lab.py` renders it. Progress goes to
`opts.progress` (the CLI prints it on stderr; by default the `hcops.lab` logger), the plan `up`
is about to carry out to `opts.on_plan`, and `destroy` acts only on the caller's confirmation
decision (`opts.yes`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.lab import control, hosts, image, network, proxy, s3
from infra.lab.layout import PROXY_PORT, Layout
from infra.lab.system import alive, require_kernel, require_root, require_tools, run
from infra.providers import InfraOptions
from infra.state import HostOutput, RegionOutputs, S3Output, outputs_path, read_outputs, write_outputs
from inventories.errors import HcopsError
from inventories.model import Region

TOOLS = ["systemd-nspawn", "ip", "tc", "nft", "ssh", "ssh-keygen", "tinyproxy", "nsenter", "mount"]
log = logging.getLogger("hcops.lab")
OK, ERROR, CHANGES = 0, 1, 2
LATENCY_NOTE = ("this kernel has no netem: the lab caps the line's bandwidth but cannot add its "
                "latency ({latency} ms in the model)")


@dataclass
class Step:
    """One line of the plan: a resource, what is wrong with it (if anything), what up will do."""

    kind: str
    name: str
    action: str  # "ok" | "create" | "repair" | "start"
    detail: str = ""


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, detail: str = "") -> None:
        self.steps.append(Step(kind, name, action, detail))

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "ok"]

    def needs(self, kind: str, name: str | None = None) -> bool:
        return any(s.kind == kind and (name is None or s.name == name) for s in self.changes)


# ---------------------------------------------------------------- results (rendered by cli/lab.py)

@dataclass
class LabPlanResult:
    """`preview`: what `up` would do."""

    region: str
    plan: Plan
    notes: list[str]

    @property
    def exit_code(self) -> int:
        return CHANGES if self.plan.changes else OK

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "provider": "lab", "changes": len(self.plan.changes),
                "steps": [asdict(s) for s in self.plan.steps], "notes": self.notes}


@dataclass
class LabUpResult:
    """`up`: the plan it followed and what it did (nothing when the lab already matched)."""

    region: str
    plan: Plan
    notes: list[str]
    done: list[str]
    seconds: float
    outputs: Path | None

    @property
    def exit_code(self) -> int:
        return OK

    def as_dict(self) -> dict[str, Any]:
        if not self.plan.changes:
            return {"region": self.region, "changes": 0, "done": [], "seconds": 0.0}
        return {"region": self.region, "changes": len(self.plan.changes), "done": self.done,
                "seconds": round(self.seconds, 1), "outputs": str(self.outputs)}


@dataclass
class LabDestroyResult:
    region: str
    removed: list[str]

    @property
    def exit_code(self) -> int:
        return OK

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "removed": self.removed}


@dataclass
class LabStatusResult:
    """`status` and `refresh`: hosts, links and S3 as observed now."""

    data: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return OK

    def as_dict(self) -> dict[str, Any]:
        return self.data


@dataclass
class LabOutputsResult:
    outputs: RegionOutputs

    @property
    def exit_code(self) -> int:
        return OK

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.outputs.model_dump_json())
        return data


Progress = Callable[[str], None]


def _progress(opts: InfraOptions | None) -> Progress:
    fn = getattr(opts, "progress", None) if opts is not None else None
    return fn if callable(fn) else log.info


# ---------------------------------------------------------------- journal

def _journal(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.journal.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_journal(layout: Layout, data: dict[str, Any]) -> None:
    layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = layout.journal.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(layout.journal)


def _host_image(layout: Layout, journal: dict[str, Any], host: str) -> str:
    """The image a host was made from (kept while it exists), else the current recipe's."""
    recorded = journal.get("hosts", {}).get(host, {}).get("image")
    if recorded and (layout.hosts[host].upper.exists()):
        return str(recorded)
    return image.recipe_hash()


@contextmanager
def _lock(layout: Layout, progress: Progress = log.info) -> Iterator[None]:
    layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(layout.state / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another hcops run on lab {layout.name} to finish ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- observe + plan

def make_plan(layout: Layout) -> Plan:
    plan = Plan()
    _plan_image(layout, plan)
    plan.add("ssh-key", str(layout.ssh_key), "ok" if layout.ssh_key.exists() else "create")
    _plan_network(layout, plan)
    _plan_services(layout, plan)
    _plan_hosts(layout, plan)
    if not outputs_path(layout.name).exists():
        plan.add("outputs", str(outputs_path(layout.name)), "create")
    return plan


def _plan_image(layout: Layout, plan: Plan) -> None:
    journal = _journal(layout)
    digests = {h: _host_image(layout, journal, h) for h in layout.hosts}
    for digest in sorted(set(digests.values())):
        if image.is_built(digest):
            plan.add("image", digest, "ok", str(image.rootfs(digest)))
        elif digest == image.recipe_hash():
            plan.add("image", digest, "create", "debootstrap Debian 12 base (cached afterwards)")
        else:
            raise HcopsError(f"the base image {digest} the lab's hosts were made from is gone",
                             f"recreate the lab: `hcops infra down --region {layout.name} --yes` then `up`")


def _plan_network(layout: Layout, plan: Plan) -> None:
    for br in layout.bridges.values():
        st = network.bridge_state(br)
        where = f"{br.name} {br.host_address}/{br.cidr.prefixlen}"
        if not st.exists:
            plan.add("bridge", br.key, "create", where)
        elif not (st.is_bridge and st.has_address and st.up):
            plan.add("bridge", br.key, "repair", f"{br.name}: address or state wrong")
        else:
            plan.add("bridge", br.key, "ok", where)
    plan.add("routing", "host", "ok" if network.host_routing_ok(layout) else "create",
             "policy routes via the link routers; no forwarding between bridges")
    for link in layout.links.values():
        lst = network.link_state(link)
        cap = f"{link.bandwidth_mbit} Mbit/s each way"
        if not lst.netns:
            plan.add("link", link.name, "create", f"router {link.netns}, {cap}")
        elif not lst.complete:
            plan.add("link", link.name, "repair", f"router {link.netns}: legs, addresses or caps missing")
        elif not all(lst.up.values()):
            plan.add("link", link.name, "repair", "cut (legs down): will be restored")
        else:
            plan.add("link", link.name, "ok", cap)


def _plan_services(layout: Layout, plan: Plan) -> None:
    for br in layout.bridges.values():
        pid = proxy.running(layout, br)
        plan.add("proxy", br.key, "ok" if pid else "start", f"{br.host_address}:{PROXY_PORT}")
    if layout.s3:
        missing = s3.missing_buckets(layout, layout.s3)
        if missing is None:
            plan.add("s3", layout.s3.service, "start", f"{layout.s3.endpoint}, buckets {', '.join(layout.s3.buckets)}")
        elif missing:
            plan.add("s3", layout.s3.service, "repair", f"buckets missing: {', '.join(missing)}")
        else:
            plan.add("s3", layout.s3.service, "ok", layout.s3.endpoint)


def _plan_hosts(layout: Layout, plan: Plan) -> None:
    for name, spec in layout.hosts.items():
        where = f"{spec.address} ({spec.site})"
        if not spec.upper.exists():
            plan.add("host", name, "create", where)
            continue
        st = hosts.observe(spec)
        if st.state == "stopped":
            plan.add("host", name, "start", f"{where}: stopped")
        elif st.state == "orphaned":
            plan.add("host", name, "repair", f"{where}: nspawn gone, init left behind")
        elif plan.needs("bridge", spec.bridge.key):
            plan.add("host", name, "repair", f"{where}: restart to rejoin the recreated bridge")
        elif not hosts.args_current(spec):
            plan.add("host", name, "repair", f"{where}: restart with the current container settings")
        else:
            plan.add("host", name, "ok", f"{where}: {st.state}")


def _latency_notes(layout: Layout) -> list[str]:
    return [f"{link.name}: " + LATENCY_NOTE.format(latency=link.latency_ms)
            for link in layout.links.values() if link.latency_ms > 0]


def _preflight(action: str) -> None:
    require_root(action)
    require_tools(TOOLS)
    require_kernel()


# ---------------------------------------------------------------- operations

def preview(region: Region, opts: InfraOptions) -> LabPlanResult:
    layout = Layout(region)
    return LabPlanResult(region.name, make_plan(layout), _latency_notes(layout))


def ensure_up(region: Region) -> list[str]:
    """Converge the lab quietly (for fixtures and drills); returns what was done."""
    _preflight("bringing a lab up")
    layout = Layout(region)
    with _lock(layout):
        plan = make_plan(layout)
        return _apply(layout, plan) if plan.changes else []


def up(region: Region, opts: InfraOptions) -> LabUpResult:
    """Plan, hand the plan to `opts.on_plan` (the CLI shows it), then make only the difference."""
    _preflight("`hcops infra up` for a lab region")
    layout = Layout(region)
    progress = _progress(opts)
    with _lock(layout, progress):
        started = time.monotonic()
        plan = make_plan(layout)
        notes = _latency_notes(layout)
        on_plan = getattr(opts, "on_plan", None)
        if callable(on_plan):
            on_plan(LabPlanResult(region.name, plan, notes))
        if not plan.changes:
            return LabUpResult(region.name, plan, notes, [], 0.0, None)
        done = _apply(layout, plan, progress)
        seconds = time.monotonic() - started
    return LabUpResult(region.name, plan, notes, done, seconds, outputs_path(region.name))


def _apply(layout: Layout, plan: Plan, progress: Progress = log.info) -> list[str]:
    done: list[str] = []

    def say(msg: str) -> None:
        done.append(msg)
        progress(f"  {msg}")

    journal = _journal(layout)
    journal.setdefault("hosts", {})
    layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    if plan.needs("image"):
        progress("building the base image (debootstrap, about a minute; cached afterwards) ...")
        _root, seconds = image.ensure()
        say(f"built base image {image.recipe_hash()} in {seconds:.0f} s")
    pub = control.ensure_ssh_key(layout)
    for br in layout.bridges.values():
        if plan.needs("bridge", br.key):
            network.ensure_bridge(layout, br)
            say(f"bridge {br.name} for {br.key}")
    if plan.needs("routing") or plan.needs("bridge"):
        network.ensure_host_routing(layout)
        say("host routing rules and nftables table")
    for link in layout.links.values():
        if plan.needs("link", link.name) or plan.needs("bridge"):
            network.ensure_link(layout, link)
            say(f"link {link.name}: router {link.netns}, {link.bandwidth_mbit} Mbit/s each way")
    for br in layout.bridges.values():
        if plan.needs("proxy", br.key):
            proxy.ensure(layout, br)
            say(f"package proxy on {br.host_address}:{PROXY_PORT}")
    if layout.s3 and plan.needs("s3"):
        for msg in s3.ensure(layout, layout.s3):
            say(msg)
    booted = []
    for name, spec in layout.hosts.items():
        digest = _host_image(layout, journal, name)
        base = image.rootfs(digest)
        hosts.mount_root(spec, base)
        changed = hosts.configure(layout, spec, pub)
        journal["hosts"][name] = {"image": digest, "machine": spec.machine}
        state = hosts.observe(spec).state
        # a recreated bridge lost the host's veth; changed container settings need a restart
        rewired = plan.needs("bridge", spec.bridge.key) or not hosts.args_current(spec)
        if state in ("stopped", "orphaned") or rewired or (changed and plan.needs("host", name)):
            if state not in ("stopped", "orphaned"):
                hosts.stop(spec, 30)
            hosts.start(spec)
            booted.append(spec)
        elif changed:
            say(f"host {name}: configuration rewritten (restart it to apply: stop-host/start-host)")
    _save_journal(layout, journal)
    control.write_ssh_files(layout)
    with ThreadPoolExecutor(max_workers=max(1, len(booted))) as pool:
        states = list(pool.map(lambda h: (h.name, control.wait_ready(layout, h)), booted))
    for name, state in states:
        say(f"host {name} booted: {state}")
    write_outputs(_outputs(layout))
    return done


def _outputs(layout: Layout) -> RegionOutputs:
    region = layout.region
    out = RegionOutputs(region=region.name, provider="lab", ssh_private_key=layout.ssh_key)
    for name, spec in layout.hosts.items():
        ref = region.hosts[name]
        out.hosts[name] = HostOutput(site=spec.site, ssh_address=spec.address,
                                     addresses=dict(ref.spec.addresses), provider_id=spec.machine)
    for svc_name, svc in region.services.items():
        vip = getattr(svc, "vip", None)
        if vip is not None:
            out.vips[svc_name] = vip
    if layout.s3:
        out.s3 = S3Output(endpoint=layout.s3.endpoint, credentials_file=s3.credentials_file(layout),
                          buckets={b: b for b in layout.s3.buckets})
    return out


def destroy(region: Region, opts: InfraOptions) -> LabDestroyResult:
    """Remove the lab. `opts.yes` is the caller's confirmation decision: without it nothing is touched."""
    require_root("`hcops infra destroy` for a lab region")
    if not opts.yes:
        raise HcopsError(f"destroying lab {region.name} needs confirmation",
                         "pass --yes (stdin is not a terminal, so hcops cannot ask)")
    layout = Layout(region)
    progress = _progress(opts)
    with _lock(layout, progress):
        removed = teardown(layout, progress)
    return LabDestroyResult(region.name, removed)


def teardown(layout: Layout, progress: Progress = log.info) -> list[str]:
    removed: list[str] = []
    specs = list(layout.hosts.values())
    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        was_running = list(pool.map(lambda h: hosts.nspawn_pid(h) is not None or bool(hosts.orphans(h)), specs))
        list(pool.map(lambda h: hosts.stop(h, 20), specs))
    removed += [f"container {h.machine}" for h, r in zip(specs, was_running, strict=True) if r]
    kept = sum(hosts.harvest_debs(h) for h in specs)
    if kept:
        progress(f"kept {kept} downloaded package(s) in {hosts.apt_archives()} for the next lab")
    for h in specs:
        if hosts.unmount_root(h):
            removed.append(f"mount {h.root}")
    if layout.s3 and s3.stop(layout):
        removed.append("S3 endpoint")
    for br in layout.bridges.values():
        if proxy.stop(layout, br):
            removed.append(f"proxy {br.key}")
    removed += network.remove_all(layout)
    shutil.rmtree(proxy.proxy_dir(layout).parent, ignore_errors=True)
    for sub in ("hosts", "run", "logs", "ssh", "s3"):
        path = layout.state / sub
        if path.exists():
            shutil.rmtree(path)
            removed.append(f"state {path}")
    for f in (outputs_path(layout.name), layout.journal):
        if f.exists():
            f.unlink()
            removed.append(f"state {f}")
    _release_nspawn_runtime()
    leftover = [p for p in layout.state.iterdir() if p.name != ".lock"] if layout.state.exists() else []
    if layout.state.exists() and not leftover:  # nothing of anyone's left (secrets/ would be kept)
        shutil.rmtree(layout.state)
    return removed


def _release_nspawn_runtime() -> None:
    """Unmount the nspawn runtime tmpfs when no container of any lab still uses it."""
    busy = False
    for p in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if p.name.isdigit() and (p / "comm").read_bytes().strip() == b"systemd-nspawn" and alive(int(p.name)):
                busy = True
    if not busy and hosts.is_mounted(hosts.NSPAWN_RUNTIME):
        run(["umount", str(hosts.NSPAWN_RUNTIME)], "unmount /run/systemd/nspawn", check=False)


def observe(layout: Layout) -> dict[str, Any]:
    rows = []
    for name, spec in layout.hosts.items():
        st = hosts.observe(spec) if spec.upper.exists() else hosts.HostState(name, "absent", None, None)
        rows.append({"host": name, "site": spec.site, "address": str(spec.address), "state": st.state,
                     "uptime_s": None if st.uptime_s is None else round(st.uptime_s),
                     "failed_units": st.failed_units, "machine": spec.machine})
    links = []
    for link in layout.links.values():
        lst = network.link_state(link)
        state = "absent" if not lst.netns else "cut" if lst.cut else "up" if lst.complete and all(
            lst.up.values()) else "broken"
        links.append({"link": link.name, "state": state, "bandwidth_mbit": link.bandwidth_mbit,
                      "router": link.netns})
    s3_state: dict[str, Any] | None = None
    if layout.s3:
        missing = s3.missing_buckets(layout, layout.s3)
        s3_state = {"endpoint": layout.s3.endpoint,
                    "state": "down" if missing is None else "degraded" if missing else "up"}
    return {"region": layout.name, "provider": "lab", "hosts": rows, "links": links, "s3": s3_state,
            "observed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def status(region: Region, opts: InfraOptions) -> LabStatusResult:
    return LabStatusResult(observe(Layout(region)))


def refresh(region: Region, opts: InfraOptions) -> LabStatusResult:
    layout = Layout(region)
    data = observe(layout)
    if layout.state.exists():
        journal = _journal(layout)
        journal["observed"] = data
        _save_journal(layout, journal)
    return LabStatusResult(data)


def outputs(region: Region, opts: InfraOptions) -> LabOutputsResult:
    return LabOutputsResult(read_outputs(region.name))
