import json


def test_version(hcops):
    res = hcops("--version")
    assert res.code == 0
    assert res.stdout.startswith("hcops ")


def test_validate_lab_ok(hcops):
    res = hcops("inventory", "validate", "lab")
    assert res.code == 0, res.stderr
    assert "lab: 2 sites, 7 hosts" in res.stdout


def test_unknown_region_is_clean_error(hcops):
    res = hcops("inventory", "show", "no-such-region")
    assert res.code == 1
    assert "unknown region 'no-such-region'" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_unknown_option_is_usage_error(hcops):
    res = hcops("inventory", "validate", "--bogus")
    assert res.code == 64
    assert "No such option" in res.stderr


def test_show_json_is_clean_json(hcops):
    res = hcops("--output", "json", "inventory", "show", "lab")
    assert res.code == 0
    data = json.loads(res.stdout)
    assert data["counties"] == ["ruijin"]
    assert data["mysql_server_ids"] == {"db1": 1, "db2": 2}
    assert data["services"]["appdb"]["hosts"] == {"db1": "10.231.1.11", "db2": "10.231.2.12"}
