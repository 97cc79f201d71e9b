"""The auth server's reply, judged as NSQ judges it: pure functions, no sockets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnsq.nsqd.auth import AuthQueryError, endpoint, parse_state, post_body, query_values


def _reply(**fields: Any) -> bytes:
    return json.dumps({"ttl": 10, **fields}).encode()


def test_a_reply_expires_ttl_seconds_from_now_and_keys_match_case_insensitively() -> None:
    state = parse_state(b'{"TTL": 5, "Identity": "a", "authorizations": null}', now=100.0)
    assert (state.identity, state.authorizations, state.expires) == ("a", (), 105.0)
    assert not state.expired(105.0)
    assert state.expired(105.001)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{}", "invalid TTL 0 (must be >0)"),
        (_reply(ttl=-1), "invalid TTL -1"),
        (_reply(ttl=1.5), "ttl is not a int"),
        (_reply(authorizations=[{"topic": "(", "channels": []}]), 'unable to compile topic "("'),
        (
            _reply(authorizations=[{"topic": "t", "channels": ["["]}]),
            'unable to compile channel "["',
        ),
        (_reply(authorizations=[{"topic": "t", "permissions": ["read"]}]), "unknown permission"),
        (_reply(authorizations=[{"topic": "t", "channels": [1]}]), "not a string"),
        (b"[]", "reply is not a JSON object"),
        (b"\xff", "invalid JSON"),
    ],
)
def test_a_reply_nsq_would_refuse_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(AuthQueryError, match=re.escape(problem)):
        parse_state(body, now=0.0)


def test_permissions_follow_nsqs_rules() -> None:
    state = parse_state(
        _reply(
            authorizations=[
                {"topic": "^a", "channels": ["x"], "permissions": ["subscribe"]},
                {"topic": "b", "channels": [""], "permissions": ["publish"]},
                {"topic": ".*", "channels": [], "permissions": ["publish", "subscribe"]},
            ]
        ),
        now=0.0,
    )
    assert state.allows("abc", "box")  # unanchored channel regex
    assert not state.allows("cab", "x")  # "^a" anchors only where its author did
    assert state.allows("xbx", "")  # publish: "" matches the channel regex ""
    assert not state.allows("aaa", "")  # subscribe-only grants cannot publish
    assert not state.allows("zzz", "")  # no channels: never publishes, never subscribes


def test_the_query_nsqd_sends() -> None:
    assert endpoint("h:4181") == "http://h:4181/auth"
    assert endpoint("https://h/x") == "https://h/x"
    values = query_values("1.2.3.4", True, "cn", b"<s>")
    assert post_body(values) == (
        b'{"common_name":["cn"],"remote_ip":["1.2.3.4"],'
        b'"secret":["\\u003cs\\u003e"],"tls":["true"]}'
    )


@given(
    st.binary()
    | st.recursive(st.none() | st.integers() | st.text(), st.lists).map(
        lambda v: json.dumps({"ttl": 1, "authorizations": v}).encode()
    )
)
def test_any_reply_is_a_state_or_an_auth_query_error(body: bytes) -> None:
    try:
        parse_state(body, now=0.0)
    except AuthQueryError:
        pass
