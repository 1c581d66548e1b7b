"""The object format: round trip, and every way a stored object can be wrong is caught."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.backup import envelope
from dr.backup.envelope import CorruptObject, seal, unseal
from dr.backup.keys import RegionKey, export_key, load_key, new_data_key, parse_export
from inventories.errors import HcopsError


def _sealed(data: bytes, name: str = "obj") -> tuple[bytes, bytes]:
    dk = new_data_key()
    out = io.BytesIO()
    seal(io.BytesIO(data), out, dk, name)
    return dk, out.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000), st.integers(min_value=0, max_value=3))
def test_round_trip_any_data(data: bytes, repeat: int) -> None:
    data = data * (repeat + 1)
    dk, blob = _sealed(data)
    out = io.BytesIO()
    assert unseal(io.BytesIO(blob), out, dk, "obj") == len(data)
    assert out.getvalue() == data


def test_multi_frame_round_trip_and_sha(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "FRAME", 4096)
    data = os.urandom(50_000)  # incompressible: many frames
    dk = new_data_key()
    out = io.BytesIO()
    sealed = seal(io.BytesIO(data), out, dk, "big")
    assert sealed.plain_bytes == len(data) and sealed.stored_bytes == len(out.getvalue())
    import hashlib
    assert sealed.sha256 == hashlib.sha256(out.getvalue()).hexdigest()
    assert data not in out.getvalue()
    back = io.BytesIO()
    unseal(io.BytesIO(out.getvalue()), back, dk, "big")
    assert back.getvalue() == data


@pytest.mark.parametrize("damage", ["flip", "truncate_frame", "drop_last", "append", "header"])
def test_damage_is_caught_and_named(damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "FRAME", 1024)
    dk, blob = _sealed(os.urandom(8000), "scan-0001.dcm")
    b = bytearray(blob)
    if damage == "flip":
        b[len(b) // 2] ^= 0x01
    elif damage == "truncate_frame":
        del b[-10:]
    elif damage == "drop_last":
        # cut exactly at a frame boundary: only the last-frame flag tells
        pos, cuts = 12, []
        while pos < len(b):
            cuts.append(pos)
            pos += 4 + int.from_bytes(b[pos:pos + 4], "big")
        del b[cuts[-1]:]
    elif damage == "append":
        b += b"x"
    else:
        b[0:4] = b"ZZZZ"
    with pytest.raises(CorruptObject) as exc:
        unseal(io.BytesIO(bytes(b)), io.BytesIO(), dk, "scan-0001.dcm")
    assert "scan-0001.dcm" in exc.value.message


def test_object_moved_to_another_name_fails() -> None:
    dk, blob = _sealed(b"patient data", "a")
    with pytest.raises(CorruptObject):
        unseal(io.BytesIO(blob), io.BytesIO(), dk, "b")


def test_wrong_region_key_is_a_clear_error(state: object) -> None:
    k1 = RegionKey("t", os.urandom(32))
    k2 = RegionKey("t", os.urandom(32))
    wrapped = k1.wrap(new_data_key(), "b1")
    with pytest.raises(HcopsError, match="wrong key") as exc:
        k2.unwrap(wrapped, "b1")
    assert "--key-file" in exc.value.hint
    with pytest.raises(HcopsError):
        k1.unwrap(wrapped, "b2")  # bound to its backup id


def test_key_export_round_trip_and_damage(state: object, tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path
    k = load_key("t", create=True)
    assert load_key("t") == k
    dest = Path(tmp_path) / "exported.key"
    export_key(k, dest)
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    assert load_key("other", key_file=dest).secret == k.secret
    with pytest.raises(HcopsError, match="already exists"):
        export_key(k, dest)
    text = dest.read_text().replace(k.fingerprint, "0" * 16)
    with pytest.raises(HcopsError, match="fingerprint"):
        parse_export(text, "x")
    with pytest.raises(HcopsError, match="not an exported"):
        parse_export("hello", "x")
    with pytest.raises(HcopsError, match="no backup key"):
        load_key("never-made")
