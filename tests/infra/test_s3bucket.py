"""The S3 bucket dynamic provider against a real S3 HTTP endpoint (moto_server on 127.0.0.1)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.openstack.s3bucket import LIFECYCLE_RULE_ID, BucketError, S3BucketProvider, bucket_props, client

_names = itertools.count(1)


@pytest.fixture
def props(moto_endpoint: str, s3_credentials: Path) -> dict[str, Any]:
    return bucket_props(bucket=f"city-offsite-backups-{next(_names)}", endpoint=moto_endpoint,
                        region_name="us-east-1", credentials_file=s3_credentials, versioning=True,
                        lifecycle={"expirationDays": 1831, "noncurrentDays": 30, "abortMultipartDays": 7},
                        encryption="AES256", object_lock=True, object_lock_days=14,
                        tags={"hcops-region": "example-city"})


def outs(result: Any) -> dict[str, Any]:
    assert result.outs is not None
    return dict(result.outs)


def raw(props: dict[str, Any]) -> Any:
    return boto3.client("s3", endpoint_url=props["endpoint"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_create_applies_versioning_lifecycle_encryption_and_lock(props: dict[str, Any]) -> None:
    result = S3BucketProvider().create(props)
    name = props["bucket"]
    assert result.id == name and outs(result)["objectLockApplied"] is True
    s3 = raw(props)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rule = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"][0]
    assert rule["ID"] == LIFECYCLE_RULE_ID and rule["Expiration"]["Days"] == 1831
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    sse = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 14)
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags == {"hcops-region": "example-city"}


def test_diff_separates_in_place_changes_from_replacements(props: dict[str, Any]) -> None:
    provider = S3BucketProvider()
    same = provider.diff(props["bucket"], props, dict(props))
    assert same.changes is False and not same.replaces
    longer_life = {**props["lifecycle"], "expirationDays": 3000}
    longer = provider.diff(props["bucket"], props, {**props, "lifecycle": longer_life})
    assert longer.changes is True and not longer.replaces
    renamed = provider.diff(props["bucket"], props, {**props, "bucket": "other-name"})
    assert renamed.changes is True and renamed.replaces == ["bucket"]


def test_update_changes_the_live_bucket(props: dict[str, Any]) -> None:
    provider = S3BucketProvider()
    created = provider.create({**props, "objectLock": False})
    news = {**props, "objectLock": False, "lifecycle": {"expirationDays": None, "noncurrentDays": 90},
            "encryption": None}
    result = provider.update(created.id, outs(created), news)
    s3 = raw(props)
    rule = s3.get_bucket_lifecycle_configuration(Bucket=props["bucket"])["Rules"][0]
    assert "Expiration" not in rule and rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_encryption(Bucket=props["bucket"])
    assert outs(result)["lifecycle"]["noncurrentDays"] == 90


def test_read_reports_drift_and_update_repairs_it(props: dict[str, Any]) -> None:
    provider = S3BucketProvider()
    created = provider.create(props)
    s3 = raw(props)
    s3.put_bucket_versioning(Bucket=props["bucket"], VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_lifecycle(Bucket=props["bucket"])
    live = provider.read(created.id, outs(created))
    assert outs(live)["versioning"] is False and outs(live)["lifecycle"] is None
    assert outs(live)["objectLockApplied"] is True and outs(live)["objectLockDays"] == 14
    drift = provider.diff(created.id, outs(live), props)
    assert drift.changes is True and not drift.replaces
    provider.update(created.id, outs(live), props)
    again = provider.read(created.id, outs(created))
    assert outs(again)["versioning"] is True
    assert outs(again)["lifecycle"]["expirationDays"] == 1831
    assert provider.diff(created.id, outs(again), props).changes is False


def test_delete_refuses_a_bucket_with_objects_and_removes_an_empty_one(props: dict[str, Any]) -> None:
    provider = S3BucketProvider()
    created = provider.create({**props, "objectLock": False})
    s3 = client(props)
    s3.put_object(Bucket=created.id, Key="db/2025-01-01.xb.zst", Body=b"backup")
    with pytest.raises(BucketError, match="still holds objects"):
        provider.delete(created.id, props)
    assert s3.head_bucket(Bucket=created.id)
    for version in s3.list_object_versions(Bucket=created.id).get("Versions", []):
        s3.delete_object(Bucket=created.id, Key=version["Key"], VersionId=version["VersionId"])
    provider.delete(created.id, props)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert created.id not in names


def test_missing_credentials_file_is_a_clear_error(props: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(BucketError, match="does not exist or cannot be read"):
        S3BucketProvider().create({**props, "credentialsFile": str(tmp_path / "nope.ini")})
    bad = tmp_path / "bad.ini"
    bad.write_text("[default]\nregion = x\n")
    with pytest.raises(BucketError, match="no aws_access_key_id"):
        S3BucketProvider().create({**props, "credentialsFile": str(bad)})
