"""The OAuth callback's HMAC, as the official `@shopify/shopify-api` checks it.

`library_message` (tests/shopify_library.py) is the library's algorithm written out literally from
its source, independent of neanelu's and the emulator's code. The known answers were computed by running that same TypeScript, transcribed to
JavaScript (`LIBRARY_JS`), under Node 20 (ICU 78); where `node` is installed the test runs it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import pytest

from neanelu.shopify.oauth import callback_message, sign_callback, verify_callback_hmac
from shopify_emulator.oauth import callback_hmac as emulator_hmac
from tests.shopify_library import library_hmac, library_message

SECRET = "test-app-secret-current-0123456789"
TS = "1700000000"

# (secret, query, the library's message, its hex HMAC)
KNOWN_ANSWERS: list[tuple[str, dict[str, str | list[str]], str, str]] = [
    (  # the library's own test query (hmac-validator.test.ts)
        "my super secret key",
        {
            "code": "some code goes here",
            "shop": "the shop URL",
            "state": "some nonce passed from auth",
            "timestamp": TS,
        },
        "code=some%20code%20goes%20here&shop=the%20shop%20URL"
        "&state=some%20nonce%20passed%20from%20auth&timestamp=1700000000",
        "10207991f5c2c65c114b70a3c3544ce1d00a236ea4ab034793de0d6407be9165",
    ),
    (  # a state with a space, a tilde and a star
        SECRET,
        {
            "code": "0907a61c0c8d55e99db179b68161bc00",
            "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ",
            "shop": "acme.myshopify.com",
            "state": "a b~c*d",
            "timestamp": TS,
        },
        "code=0907a61c0c8d55e99db179b68161bc00&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ"
        "&shop=acme.myshopify.com&state=a%20b%7Ec*d&timestamp=1700000000",
        "321d01fa8a5a018c135f92e3efdf0e70a74eef6156e63637b3d8e5bf6044f042",
    ),
    (  # localeCompare order: `_` before letters, case-blind (Zeta last), hmac left out
        SECRET,
        {"code": "x", "Zeta": "1", "alpha": "2", "a_b": "3", "ab": "4", "timestamp": TS},
        "a_b=3&ab=4&alpha=2&code=x&timestamp=1700000000&Zeta=1",
        "26a837e562f6f1536c99c5d8185816fd1fa331a694c1086e8ab4722f9559db9b",
    ),
    (  # a list value: one key[]=item pair per item, in the given order
        SECRET,
        {"ids": ["2", "1"], "shop": "acme.myshopify.com", "timestamp": TS},
        "ids%5B%5D=2&ids%5B%5D=1&shop=acme.myshopify.com&timestamp=1700000000",
        "f0b3f833df379f03f1f93136aebbe220e30ceff4eca365b1dbfd86ca1de01bfe",
    ),
    (  # UTF-8, a literal plus, percent and the characters URLSearchParams escapes
        SECRET,
        {"shop": "acme.myshopify.com", "state": "é日 + 100% (ok)!", "timestamp": TS},
        "shop=acme.myshopify.com&state=%C3%A9%E6%97%A5%20%2B%20100%25%20%28ok%29%21"
        "&timestamp=1700000000",
        "aeef258ef2751a212cdd3216d7f4a334ed3a21462c829bb2bb3ae7b6a7336cf3",
    ),
]

# --- the tests -----------------------------------------------------------------------------------


CASE_IDS = ["library-test", "state-space-tilde-star", "key-order", "list-value", "utf8-escapes"]


@pytest.mark.parametrize(("secret", "query", "message", "digest"), KNOWN_ANSWERS, ids=CASE_IDS)
def test_literal_algorithm_gives_the_known_answers(
    secret: str, query: dict[str, str | list[str]], message: str, digest: str
) -> None:
    assert library_message(query) == message
    assert library_hmac(query, secret) == digest


@pytest.mark.parametrize(("secret", "query", "message", "digest"), KNOWN_ANSWERS, ids=CASE_IDS)
def test_neanelu_checks_the_callback_as_the_library_does(
    secret: str, query: dict[str, str | list[str]], message: str, digest: str
) -> None:
    assert callback_message(query) == message
    assert sign_callback(query, secret) == digest
    assert verify_callback_hmac({**query, "hmac": digest}, [secret])
    assert verify_callback_hmac({**query, "hmac": digest.upper()}, ["other", secret])
    # What Python's urlencode would have signed does not pass.
    plus_encoded = hmac.new(secret.encode(), message.replace("%20", "+").encode(), hashlib.sha256)
    if "%20" in message:
        assert not verify_callback_hmac({**query, "hmac": plus_encoded.hexdigest()}, [secret])


@pytest.mark.parametrize(
    ("secret", "query", "digest"),
    [
        pytest.param(s, q, d, id=name)
        for name, (s, q, _, d) in zip(CASE_IDS, KNOWN_ANSWERS, strict=True)
        if all(isinstance(v, str) for v in q.values())
    ],
)
def test_emulator_signs_as_the_library_checks(
    secret: str, query: dict[str, str], digest: str
) -> None:
    assert emulator_hmac({**query, "hmac": "x", "signature": "y"}, secret) == digest


def test_signed_text_leaves_out_hmac_and_signature_and_malformed_hmac_fails() -> None:
    query = {"shop": "acme.myshopify.com", "state": "s t", "timestamp": TS}
    digest = library_hmac(query, SECRET)
    assert verify_callback_hmac({**query, "signature": "anything", "hmac": digest}, [SECRET])
    assert not verify_callback_hmac({**query, "hmac": ["a", "b"]}, [SECRET])
    assert not verify_callback_hmac({**query, "hmac": "é" * 64}, [SECRET])
    assert not verify_callback_hmac({**query, "state": "s+t", "hmac": digest}, [SECRET])
    # A lone surrogate is encoded as JavaScript would (U+FFFD), never raised on.
    assert not verify_callback_hmac({**query, "state": "\ud800", "hmac": digest}, [SECRET])


def _random_keys(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pools = ["".join(chr(i) for i in range(32, 127)), "aAbB_-19", "ab_AB.", "stateSTATE_"]
    keys: set[str] = set()
    while len(keys) < count:
        pool = rng.choice(pools)
        keys.add("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
    return sorted(keys)


def test_key_order_matches_the_literal_locale_compare() -> None:
    keys = _random_keys(1500, seed=12)
    query = {key: "v" for key in keys}
    assert callback_message(query) == library_message(query)
    assert emulator_hmac(query, SECRET) == library_hmac(query, SECRET)


LIBRARY_JS = r"""
const crypto = require('crypto');
class ProcessedQuery {
  constructor() { this.processedQuery = new URLSearchParams(); }
  put(key, value) {
    if (Array.isArray(value)) {
      value.forEach((v) => this.processedQuery.append(`${key}[]`, `${v}`));
    } else {
      this.processedQuery.append(key, `${value}`);
    }
  }
  stringify(omitQuestionMark = false) {
    const queryString = this.processedQuery.toString().replace(/\+/g, '%20');
    return omitQuestionMark ? queryString : `?${queryString}`;
  }
}
function stringifyQueryForAdmin(query) {
  const processedQuery = new ProcessedQuery();
  Object.keys(query)
    .sort((val1, val2) => val1.localeCompare(val2))
    .forEach((key) => processedQuery.put(key, query[key]));
  return processedQuery.stringify(true);
}
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map(([secret, params]) => {
  const {hmac, signature, ...query} = params;
  const message = stringifyQueryForAdmin(query);
  return [message, crypto.createHmac('sha256', secret).update(message).digest('hex')];
})));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_known_answers_and_key_order_under_node() -> None:
    cases: list[tuple[str, Mapping[str, str | Sequence[str]]]] = [
        (s, q) for s, q, _, _ in KNOWN_ANSWERS
    ]
    cases.append((SECRET, {key: "v" for key in _random_keys(1500, seed=12)}))
    result = subprocess.run(
        ["node", "-e", LIBRARY_JS],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answers = json.loads(result.stdout)
    for (_, _, message, digest), (node_message, node_digest) in zip(
        KNOWN_ANSWERS, answers, strict=False
    ):
        assert (node_message, node_digest) == (message, digest)
    random_message, random_digest = answers[-1]
    assert callback_message(cases[-1][1]) == random_message
    assert sign_callback(cases[-1][1], SECRET) == random_digest
