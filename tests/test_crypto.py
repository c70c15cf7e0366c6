"""Session data is sealed with AES-256-GCM; keys are checked, rotated and kept in dev."""

import pytest

from services.crypto import EncryptionKeyError, Sealer, SealError, load_sealer, new_key, parse_key


def test_seal_and_open_round_trip():
    sealer = Sealer.from_setting(new_key())
    sealed = sealer.seal(b"my order number is 42", b"s1|message")
    assert b"order" not in sealed
    assert sealer.open(sealed, b"s1|message") == b"my order number is 42"


def test_a_value_moved_to_another_session_or_tampered_does_not_open():
    sealer = Sealer.from_setting(new_key())
    sealed = sealer.seal(b"secret", b"s1|data")
    with pytest.raises(SealError):
        sealer.open(sealed, b"s2|data")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.open(tampered, b"s1|data")


def test_rotation_first_key_seals_all_keys_open():
    old, new = new_key(), new_key()
    sealed_old = Sealer.from_setting(old).seal(b"x", b"a")
    rotated = Sealer.from_setting(f"{new},{old}")
    assert rotated.open(sealed_old, b"a") == b"x"
    with pytest.raises(SealError):
        Sealer.from_setting(new).open(sealed_old, b"a")


@pytest.mark.parametrize(
    "bad",
    ["short", "z" * 64, "", new_key()[:-8]],
    ids=["short", "not-base64", "empty", "truncated"],  # stable ids: the workers compare them
)
def test_malformed_keys_are_refused(bad):
    with pytest.raises(EncryptionKeyError):
        Sealer.from_setting(bad) if bad else parse_key(bad)


def test_hex_keys_are_accepted():
    assert len(parse_key("ab" * 32)) == 32


def test_production_refuses_to_start_without_a_key(tmp_path):
    with pytest.raises(EncryptionKeyError, match="SESSION_ENCRYPTION_KEY"):
        load_sealer(None, production=True, key_file=tmp_path / "k")


def test_development_keeps_its_generated_key_across_restarts(tmp_path):
    key_file = tmp_path / ".session-key"
    sealed = load_sealer(None, production=False, key_file=key_file).seal(b"yesterday", b"a")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert load_sealer(None, production=False, key_file=key_file).open(sealed, b"a") == b"yesterday"
