from __future__ import annotations

import json

import pytest
from report_builders import check, mixed_results, results

from reports.model import ProfileInfo, RunResults
from reports.signing import (
    SigningKeyError,
    generate_key,
    jcs,
    key_id,
    load_private_key,
    load_public_key,
    raw_public_key,
    save_private_key,
    save_public_key,
    sign,
    signed_bytes,
    verify,
    verify_file,
)


@pytest.fixture(scope="module")
def key():
    return generate_key()


@pytest.fixture(scope="module")
def signed_json(key) -> str:
    return sign(mixed_results(), key).to_json(indent=None)


def test_round_trip_verifies(key, signed_json):
    ok, reason = verify(signed_json)
    assert ok, reason
    assert key_id(key) in reason


def test_reformatting_keeps_the_signature_valid(signed_json):
    pretty = json.dumps(json.loads(signed_json), indent=4)
    assert verify(pretty)[0]


def test_unsigned_results_are_refused_unless_allowed():
    unsigned = mixed_results().to_json()
    assert verify(unsigned) == (False, "not signed")
    assert verify(unsigned, require_signature=False)[0]


def test_a_changed_message_fails(signed_json):
    tampered = signed_json.replace("client certificate required", "client certificate requires", 1)
    assert tampered != signed_json
    ok, reason = verify(tampered)
    assert not ok
    assert "changed after signing" in reason


def test_every_single_byte_change_is_detected(key):
    # The compact encoding has no insignificant whitespace, so every byte is content, structure or
    # signature: flipping any one of them must make verification fail. A small run keeps this quick.
    one_profile = ProfileInfo("p", "P", "hub", ("draft-ietf-mimi-protocol-06",), {"PROTO-TRANSPORT-MTLS": "MUST"})
    small = results([check("t", "PASS", ["PROTO-TRANSPORT-MTLS"], ambiguity_ids=["AMB-X"])], (one_profile,),
                    manifest={"name": "é"})  # fmt: skip
    data = sign(small, key).to_json(indent=None).encode("utf-8")
    undetected = []
    for offset in range(len(data)):
        tampered = bytearray(data)
        tampered[offset] ^= 0x01
        if verify(bytes(tampered))[0]:
            undetected.append((offset, data[max(0, offset - 20) : offset + 20]))
    assert undetected == []


def test_a_verdict_edited_consistently_still_fails_the_signature(key):
    # Change a verdict and re-score so that schema and profile checks pass: only the signature catches it.
    document = json.loads(sign(mixed_results(), key).to_json())
    document["checks"][2]["verdict"] = "PASS"
    results = RunResults.from_dict(document)
    from reports.scoring import rescore

    rescored = RunResults.from_dict({**results.as_dict(), "profiles": [p.as_dict() for p in rescore(results)]})
    ok, reason = verify(rescored.to_json())
    assert not ok
    assert "changed after signing" in reason


def test_a_profile_verdict_that_does_not_follow_from_the_checks_is_refused(key):
    document = json.loads(mixed_results().to_json())
    document["profiles"][0]["verdict"] = "CONFORMANT"
    resigned = sign(RunResults.from_dict(document), key).to_json()
    ok, reason = verify(resigned)
    assert not ok
    assert "does not follow from the checks" in reason


def test_a_manifest_that_does_not_match_its_hash_is_refused(key):
    document = json.loads(sign(mixed_results(), key).to_json())
    document["sut_manifest"]["version"] = "9.9.9"
    assert verify(json.dumps(document)) == (False, "sut_manifest_sha256 does not match sut_manifest")


def test_schema_errors_are_reported_as_such(signed_json):
    document = json.loads(signed_json)
    document["checks"][0]["verdict"] = "PASSED"
    ok, reason = verify(json.dumps(document))
    assert not ok
    assert "results.schema.json" in reason


def test_trusted_keys(key, signed_json):
    other = generate_key()
    assert verify(signed_json, trusted_keys=[key.public_key()])[0]
    assert verify(signed_json, trusted_keys=[key_id(key)])[0]
    ok, reason = verify(signed_json, trusted_keys=[other.public_key()])
    assert not ok
    assert "not a trusted key" in reason


def test_a_signature_by_another_key_with_the_block_swapped_fails(key, signed_json):
    other = generate_key()
    forged = json.loads(sign(mixed_results(), other).to_json())
    forged["signature"]["public_key"] = json.loads(signed_json)["signature"]["public_key"]
    forged["signature"]["key_id"] = key_id(key)
    assert not verify(json.dumps(forged))[0]


def test_key_files_round_trip_and_verify_file(tmp_path, key):
    save_private_key(key, tmp_path / "signing.pem")
    save_public_key(key, tmp_path / "signing.pub.pem")
    (tmp_path / "signing.pub.hex").write_text(key.public_key().public_bytes_raw().hex() + "\n")
    assert (tmp_path / "signing.pem").stat().st_mode & 0o077 == 0
    loaded = load_private_key(tmp_path / "signing.pem")
    results_path = tmp_path / "results.json"
    results_path.write_text(sign(mixed_results(), loaded).to_json())
    assert key_id(load_public_key(tmp_path / "signing.pub.hex")) == key_id(key)
    code, message = verify_file(results_path, trusted_key_file=tmp_path / "signing.pub.pem")
    assert code == 0, message
    results_path.write_text(results_path.read_text().replace('"seed": 1234', '"seed": 1235'))
    assert verify_file(results_path)[0] == 1
    assert verify_file(tmp_path / "missing.json")[0] == 2
    (tmp_path / "garbage.pem").write_text("not a key")
    assert verify_file(results_path, trusted_key_file=tmp_path / "garbage.pem")[0] == 2
    with pytest.raises(SigningKeyError):
        load_private_key(tmp_path / "garbage.pem")


# --------------------------------------------------------------------------------------------
# RFC 8785 canonicalization, and files signed before it


def test_signature_block_names_rfc8785(signed_json):
    assert json.loads(signed_json)["signature"]["canonicalization"] == "RFC8785"


def test_signed_bytes_are_rfc8785_jcs(key):
    document = sign(mixed_results(), key).as_dict()
    assert signed_bytes(document) == jcs({k: v for k, v in document.items() if k != "signature"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [  # RFC 8785 section 3.2.2.3 and appendix B: ECMAScript number serialisation
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (333333333.33333329, "333333333.3333333"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (0.000001, "0.000001"),
        (9007199254740991, "9007199254740991"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_jcs_number_serialisation(value, expected):
    assert jcs(value) == expected.encode()


def test_jcs_sorts_keys_by_utf16_code_units():
    # RFC 8785 section 3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33, unlike code-point order.
    data = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}  # fmt: skip
    keys = list(json.loads(jcs(data)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_jcs_rfc8785_section_3_2_2_example():
    data = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000f\nA'B\"\\\\\"/", "literals": [None, True, False]}  # fmt: skip
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert jcs(data) == expected.encode("utf-8")


def test_a_file_signed_over_sorted_keys_json_still_verifies(key):
    """Files signed before RFC 8785 was adopted name the older form and are checked under it."""
    document = mixed_results().as_dict()
    legacy = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    document["signature"] = {"algorithm": "Ed25519", "canonicalization": "json-sorted-keys-compact-utf8",
                             "public_key": raw_public_key(key).hex(), "key_id": key_id(key),
                             "value": key.sign(legacy).hex()}  # fmt: skip
    ok, reason = verify(json.dumps(document, indent=2))
    assert ok, reason


def test_the_two_canonical_forms_differ_where_rfc8785_says():
    document = {"duration_s": 1e21, "\U0001f600": 1, "\ufb33": 2}
    assert signed_bytes(document, "json-sorted-keys-compact-utf8") != signed_bytes(document)
    assert signed_bytes(document) == '{"duration_s":1e+21,"\U0001f600":1,"\ufb33":2}'.encode()


def test_an_unknown_canonicalization_is_refused(signed_json):
    document = json.loads(signed_json)
    document["signature"]["canonicalization"] = "xml-c14n"
    ok, reason = verify(json.dumps(document))
    assert not ok and "canonicalization" in reason
