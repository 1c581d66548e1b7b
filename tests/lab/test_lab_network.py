"""The lab's hosts and network behave like the model says: real systemd hosts, site networks,
a dedicated line that is the only way between sites and never carries more than its rate."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.lab import Lab
from tests.lab.conftest import measure_mbit

pytestmark = pytest.mark.lab

LINK = "dedicated-line"
TOLERANCE = 1.08  # tbf's bucket and TCP framing: a few percent above the cap is the bucket, not a leak


def test_every_host_is_a_running_systemd_host_over_ssh(lab: Lab) -> None:
    for host in lab.hosts:
        out = lab.run(host, "hostname; systemctl is-system-running; ip -4 -o addr show host0").stdout.split("\n")
        assert out[0] == host
        assert out[1] == "running", f"{host}: {out[1]}"
        assert f"inet {lab.address(host)}/24" in out[2]


def test_hosts_on_one_network_reach_each_other_directly(lab: Lab) -> None:
    # ttl 64 = no router between them: same bridge.
    for src, dst in (("collector1", "db1"), ("db1", "backup1"), ("app1", "app2"), ("app2", "db2"), ("db2", "zbx1")):
        out = lab.run(src, f"ping -c1 -W2 {dst}").stdout
        assert "ttl=64" in out, out


def test_other_site_is_one_router_hop_away(lab: Lab) -> None:
    out = lab.run("db1", "ping -c1 -W2 app1").stdout
    assert "ttl=63" in out, out  # through the link router, not the lab machine
    assert "ttl=63" in lab.run("app2", "ping -c1 -W2 collector1").stdout


def test_the_lab_machine_does_not_forward_between_bridges(lab: Lab) -> None:
    for br in lab.layout.bridges.values():
        assert Path(f"/proc/sys/net/ipv4/conf/{br.name}/forwarding").read_text().strip() == "0"
    rules = subprocess.run(["nft", "list", "table", "inet", lab.layout.nft_table],
                           capture_output=True, text=True, check=True).stdout
    a, b = (br.name for br in lab.layout.bridges.values())
    assert f'iifname "{a}" oifname "{b}" drop' in rules and f'iifname "{b}" oifname "{a}" drop' in rules


def test_cross_site_transfer_is_capped_at_the_line_rate_both_ways(lab: Lab) -> None:
    cap = lab.region.links[LINK].bandwidth_mbit
    up_rate = measure_mbit(lab, "db1", "app1")
    down_rate = measure_mbit(lab, "app2", "backup1")
    local_rate = measure_mbit(lab, "app1", "app2")
    print(f"cross-site {up_rate:.1f} / {down_rate:.1f} Mbit/s (cap {cap}); same site {local_rate:.0f} Mbit/s")
    for rate in (up_rate, down_rate):
        assert rate <= cap * TOLERANCE
        assert rate >= cap * 0.5  # the transfer really ran over a working line
    assert local_rate > cap * 1.5  # the cap is the line's, not the machine's


def test_s3_endpoint_enforces_lab_credentials_and_model_buckets(lab: Lab) -> None:
    s3out = lab.outputs.s3
    assert s3out is not None
    assert oct(s3out.credentials_file.stat().st_mode & 0o777) == "0o600"
    cp = configparser.ConfigParser()
    cp.read(s3out.credentials_file)
    creds = cp["default"]
    s3 = boto3.client("s3", endpoint_url=s3out.endpoint, region_name=s3out.region_name,
                      aws_access_key_id=creds["aws_access_key_id"],
                      aws_secret_access_key=creds["aws_secret_access_key"])
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert set(s3out.buckets.values()) <= names
    assert s3.get_bucket_versioning(Bucket="offsite-backups")["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket="offsite-backups")["ObjectLockConfiguration"][
        "ObjectLockEnabled"] == "Enabled"
    wrong = boto3.client("s3", endpoint_url=s3out.endpoint, region_name="us-east-1",
                         aws_access_key_id="AKIAWRONGWRONGWRONG0", aws_secret_access_key="wrong")
    with pytest.raises(ClientError):
        wrong.list_buckets()


def test_s3_downloads_to_the_other_site_cross_the_shaped_line(lab: Lab) -> None:
    """Replies from the lab machine's S3 endpoint to the local site take the line too (policy routing)."""
    s3out = lab.outputs.s3
    assert s3out is not None
    cp = configparser.ConfigParser()
    cp.read(s3out.credentials_file)
    s3 = boto3.client("s3", endpoint_url=s3out.endpoint, region_name="us-east-1",
                      aws_access_key_id=cp["default"]["aws_access_key_id"],
                      aws_secret_access_key=cp["default"]["aws_secret_access_key"])
    s3.put_object(Bucket="pacs-images", Key="lab-test/blob", Body=b"\0" * 12_000_000)
    try:
        # moto's auth mode rejects presigned URLs, so curl signs the request itself (SigV4);
        # the key travels on stdin, not the command line.
        cmd = ("curl -sf -K - --aws-sigv4 aws:amz:us-east-1:s3 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "
               f"-o /dev/null -w '%{{size_download}} %{{speed_download}}' {s3out.endpoint}/pacs-images/lab-test/blob")
        creds = f'user = "{cp["default"]["aws_access_key_id"]}:{cp["default"]["aws_secret_access_key"]}"\n'
        out = lab.run("db1", cmd, timeout=60, stdin=creds).stdout.split()
        size, bytes_per_s = int(out[0]), float(out[1])
        rate = bytes_per_s * 8 / 1e6
        cap = lab.region.links[LINK].bandwidth_mbit
        print(f"S3 to the local site: {rate:.1f} Mbit/s (cap {cap})")
        assert size == 12_000_000
        assert rate <= cap * TOLERANCE
    finally:
        versions = s3.list_object_versions(Bucket="pacs-images", Prefix="lab-test/")
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            s3.delete_object(Bucket="pacs-images", Key=v["Key"], VersionId=v["VersionId"])


def test_hosts_install_packages_through_the_proxy_and_reach_nothing_else(lab: Lab) -> None:
    proxy = lab.run("app1", "cat /etc/apt/apt.conf.d/01hcops-proxy").stdout
    assert f"http://{lab.layout.bridges['cloud.vpc'].host_address}:3128" in proxy
    # A name outside the machine's apt sources is refused by the proxy itself (403), no traffic leaves.
    code = lab.run("app1", "curl -s -o /dev/null -w '%{http_code}' -x "
                   f"http://{lab.layout.bridges['cloud.vpc'].host_address}:3128 http://example.org/",
                   check=False).stdout
    assert code == "403"
    # Hosts route everything through the link router, and the router knows only the lab's networks.
    assert f"default via {lab.layout.bridges['cloud.vpc'].gateway}" in lab.run("app1", "ip route").stdout
    link = lab.layout.links["dedicated-line"]
    routes = subprocess.run(["ip", "-n", link.netns, "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    assert "default" not in routes
    assert all(line.startswith("10.231.") for line in routes.splitlines())
