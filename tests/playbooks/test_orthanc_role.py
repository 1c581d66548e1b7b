"""The orthanc role without the lab: its facts from the lab model, its templates rendered by
Ansible, and a real Orthanc booted on the rendered configuration (pointed at loopback): the
account from the secret store gets in, nobody else does, the firewall file is valid nftables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dr.backup.orthanc import USER, Orthanc
from infra.deploy_pki import read_secret
from inventories.describe import summary
from inventories.errors import HcopsError
from inventories.loader import load_region
from tests.backup.orthanc_server import free_port

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def test_rendered_config_boots_orthanc_with_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("HCOPS_STATE_DIR", str(state))
    out, storage = tmp_path / "out", tmp_path / "db"
    out.mkdir()
    http_port, dicom_port = free_port(), free_port()
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"hcops_model": summary(load_region("lab")), "hcops_region": "lab"}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "playbooks" / "ansible.cfg"), HCOPS_STATE_DIR=str(state),
               ANSIBLE_LOOKUP_PLUGINS=str(REPO / "playbooks" / "lookup_plugins"))  # found beside site.yml otherwise
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", str(HERE / "orthanc_render.yml"), "-e", f"@{extra}",
                           "-e", f"out_dir={out}", "-e", f"http_port={http_port}", "-e", f"dicom_port={dicom_port}",
                           "-e", f"storage_dir={storage}"],
                          capture_output=True, text=True, env=env, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    password = read_secret("lab", "orthanc-pacs")
    assert password and password not in proc.stdout + proc.stderr  # no_log: the secret never shows
    model = json.loads((out / "model.json").read_text())
    assert (model["spec"]["port"], model["spec"]["dicom_port"], model["address"]) == (8042, 4242, "10.231.1.10")
    assert model["allowed_from"] == ["10.231.1.0/24"]
    cfg = json.loads((out / "orthanc.json").read_text())
    assert (cfg["DicomAet"], cfg["HttpPort"], cfg["DicomPort"]) == ("RUIJIN_PACS", http_port, dicom_port)
    assert cfg["AuthenticationEnabled"] is True and cfg["HttpBindAddresses"] == ["127.0.0.1"]
    assert cfg["StorageDirectory"] == cfg["IndexDirectory"] == str(storage)
    assert json.loads((out / "credentials.json").read_text()) == {"RegisteredUsers": {USER: password}}
    nft = (out / "hcops-pacs.nft").read_text()
    assert f"tcp dport {{ {http_port}, {dicom_port} }} ip daddr 127.0.0.1 ip saddr {{ 10.231.1.0/24 }} accept" in nft
    if shutil.which("nft"):
        check = subprocess.run(["nft", "-c", "-f", str(out / "hcops-pacs.nft")], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stderr

    confdir = tmp_path / "etc-orthanc"
    confdir.mkdir()
    for name in ("orthanc.json", "credentials.json"):
        shutil.copy(out / name, confdir / name)
    storage.mkdir()
    with open(tmp_path / "orthanc.out", "wb") as log:
        server = subprocess.Popen(["Orthanc", f"--logdir={tmp_path}", str(confdir)], stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL)
    try:
        client = Orthanc(f"http://127.0.0.1:{http_port}", USER, password, timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                system = client.system()
                break
            except HcopsError:
                assert server.poll() is None, (tmp_path / "orthanc.out").read_text()[-2000:]
                assert time.monotonic() < deadline, "Orthanc did not answer on the rendered configuration"
                time.sleep(0.3)
        assert system["DicomAet"] == "RUIJIN_PACS" and system["Name"] == "pacs"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/system", timeout=10)
        assert info.value.code == 401
        with pytest.raises(HcopsError, match="refused the credentials"):
            Orthanc(client.url, USER, "guess", timeout=10).system()
    finally:
        server.terminate()
        server.wait(30)
