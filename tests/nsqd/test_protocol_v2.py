"""Protocol V2 over real sockets: what a client sends, what nsqd answers, byte for byte.

Errors are checked with NSQ 1.3's exact texts, and for every fatal one that nsqd then closes the
connection; the three non-fatal ones (E_FIN_FAILED, E_REQ_FAILED, E_TOUCH_FAILED) must leave it
open, which ``sync()`` proves by a round trip after the error. Each test runs under the client's
read deadline and pytest's timeout.
"""

from __future__ import annotations

import json
import struct

import pytest
import trio
from v2client import StartNSQD, V2Client, size_prefix, wait_until

from pnsq.nsqd.nsqd import NSQD
from pnsq.wire import FRAME_TYPE_RESPONSE, HEARTBEAT, encode_identify

MSG_ID = b"0123456789abcdef"


def identify_body(data: bytes) -> bytes:
    return b"IDENTIFY\n" + size_prefix(len(data)) + data


async def assert_fatal(client: V2Client, expected: bytes) -> None:
    assert await client.read_error() == expected
    await client.expect_closed()


async def test_magic_then_commands_are_served(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.pub("t", b"hello")


async def test_a_producer_needs_no_identify(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.mpub("t", [b"a", b"b"])
        await client.dpub("t", 10, b"c")


# -- IDENTIFY -------------------------------------------------------------------------------


async def test_identify_without_feature_negotiation_answers_ok_and_applies(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    async with await V2Client.connect(address) as client:
        assert await client.identify(client_id="c", hostname="h", user_agent="test/1") == b"OK"
        assert await client.identify(feature_negotiation=False, msg_timeout=5000) == b"OK"
        (server_side,) = nsqd.clients.values()
        assert (server_side.client_id, server_side.hostname) == ("", "")  # the second IDENTIFY
        assert server_side.msg_timeout == 5.0


async def test_identify_with_feature_negotiation_reports_every_field(
    address: tuple[str, int],
) -> None:
    async with await V2Client.connect(address) as client:
        response = await client.identify_json(client_id="c", hostname="h")
    assert response == {
        "max_rdy_count": 2500,
        "version": "1.3.0",
        "max_msg_timeout": 900_000,
        "msg_timeout": 60_000,
        "tls_v1": False,
        "deflate": False,
        "deflate_level": 6,
        "max_deflate_level": 6,
        "snappy": False,
        "sample_rate": 0,
        "auth_required": False,
        "output_buffer_size": 16384,
        "output_buffer_timeout": 250,
        "topology_zone": "",
        "topology_region": "",
    }


async def test_identify_response_reflects_client_settings_and_server_limits(
    start_nsqd: StartNSQD,
) -> None:
    nsqd: NSQD = await start_nsqd(
        max_rdy_count=100,
        max_msg_timeout=120.0,
        msg_timeout=30.0,
        max_deflate_level=3,
        output_buffer_timeout=0.1,
    )
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as client:
        response = await client.identify_json(
            msg_timeout=5000, sample_rate=42, output_buffer_size=1024, output_buffer_timeout=100
        )
    assert response["max_rdy_count"] == 100
    assert response["max_msg_timeout"] == 120_000
    assert response["msg_timeout"] == 5000
    assert response["sample_rate"] == 42
    assert response["output_buffer_size"] == 1024
    assert response["output_buffer_timeout"] == 100
    assert response["max_deflate_level"] == 3
    assert response["deflate_level"] == 3


async def test_identify_defaults_come_from_the_server_options(start_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await start_nsqd(msg_timeout=30.0, output_buffer_timeout=0.1)
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as client:
        response = await client.identify_json()
    assert response["msg_timeout"] == 30_000
    assert response["output_buffer_timeout"] == 100


async def test_identify_minus_one_means_unbuffered(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        response = await client.identify_json(output_buffer_size=-1, output_buffer_timeout=-1)
        assert (response["output_buffer_size"], response["output_buffer_timeout"]) == (1, 0)
        await client.subscribe("t", "c")
        await client.pub("t", b"unbuffered")
        assert (await client.read_message()).body == b"unbuffered"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"heartbeat_interval": 500}, b"IDENTIFY heartbeat interval (500) is invalid"),
        ({"heartbeat_interval": 60001}, b"IDENTIFY heartbeat interval (60001) is invalid"),
        ({"heartbeat_interval": -2}, b"IDENTIFY heartbeat interval (-2) is invalid"),
        ({"output_buffer_size": 63}, b"IDENTIFY output buffer size (63) is invalid"),
        ({"output_buffer_size": 65537}, b"IDENTIFY output buffer size (65537) is invalid"),
        ({"output_buffer_timeout": 24}, b"IDENTIFY output buffer timeout (24) is invalid"),
        ({"output_buffer_timeout": 30001}, b"IDENTIFY output buffer timeout (30001) is invalid"),
        ({"sample_rate": 100}, b"IDENTIFY sample rate (100) is invalid"),
        ({"sample_rate": -1}, b"IDENTIFY sample rate (-1) is invalid"),
        ({"msg_timeout": 999}, b"IDENTIFY msg timeout (999) is invalid"),
        ({"msg_timeout": 900001}, b"IDENTIFY msg timeout (900001) is invalid"),
        ({"heartbeat_interval": "1000"}, b"IDENTIFY failed to decode JSON body"),
    ],
)
async def test_identify_out_of_range_value_is_a_fatal_bad_body(
    address: tuple[str, int], fields: dict[str, object], error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(encode_identify({"feature_negotiation": True, **fields}))
        await assert_fatal(client, b"E_BAD_BODY " + error)


@pytest.mark.parametrize(
    "fields",
    [
        {"heartbeat_interval": 1000},
        {"heartbeat_interval": 60000},
        {"heartbeat_interval": 0},
        {"output_buffer_size": 64},
        {"output_buffer_size": 65536},
        {"output_buffer_timeout": 25},
        {"output_buffer_timeout": 30000},
        {"sample_rate": 99},
        {"msg_timeout": 1000},
        {"msg_timeout": 900000},
        {"short_id": "old", "long_id": "old.example", "unknown_field": [1, 2]},
    ],
)
async def test_identify_accepts_the_bounds_and_ignores_unknown_fields(
    address: tuple[str, int], fields: dict[str, object]
) -> None:
    async with await V2Client.connect(address) as client:
        assert await client.identify(**fields) == b"OK"
        await client.sync()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (identify_body(b"{not json"), b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
        (b"IDENTIFY\n" + size_prefix(0), b"E_BAD_BODY IDENTIFY invalid body size 0"),
        (b"IDENTIFY\n" + size_prefix(-5), b"E_BAD_BODY IDENTIFY invalid body size -5"),
        (
            b"IDENTIFY\n" + size_prefix(5 * 1024 * 1024 + 1),
            b"E_BAD_BODY IDENTIFY body too big 5242881 > 5242880",
        ),
    ],
)
async def test_identify_body_errors_are_fatal(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(data)
        await assert_fatal(client, error)


async def test_second_identify_before_sub_is_accepted_and_applies(
    address: tuple[str, int],
) -> None:
    """B.3: NSQ 1.3 accepts a second IDENTIFY while the client has not subscribed."""
    async with await V2Client.connect(address) as client:
        assert (await client.identify_json(msg_timeout=5000))["msg_timeout"] == 5000
        assert (await client.identify_json(msg_timeout=7000))["msg_timeout"] == 7000
        await client.subscribe("t", "c")


async def test_identify_after_sub_is_fatal(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.sub("t", "c")
        await client.send(encode_identify({}))
        await assert_fatal(client, b"E_INVALID cannot IDENTIFY in current state")


# -- errors: fatal ones close the connection ----------------------------------------------------

BIG = 5 * 1024 * 1024

FATAL_BEFORE_SUB = [
    (b"FOO\n", b"E_INVALID invalid command FOO"),
    (b"sub t c\n", b"E_INVALID invalid command sub"),
    (b"SUB t\n", b"E_INVALID SUB insufficient number of parameters"),
    (b"SUB bad!topic c\n", b'E_BAD_TOPIC SUB topic name "bad!topic" is not valid'),
    (b"SUB t bad!channel\n", b'E_BAD_CHANNEL SUB channel name "bad!channel" is not valid'),
    (b"SUB " + b"t" * 65 + b" c\n", b'E_BAD_TOPIC SUB topic name "' + b"t" * 65 + b'" is not valid'),
    (b"SUB t " + b"c" * 55 + b"#ephemeral\n", b'E_BAD_CHANNEL SUB channel name "' + b"c" * 55 + b'#ephemeral" is not valid'),
    (b"PUB\n", b"E_INVALID PUB insufficient number of parameters"),
    (b"PUB bad!topic\n" + size_prefix(1) + b"x", b'E_BAD_TOPIC PUB topic name "bad!topic" is not valid'),
    (b"PUB t\n" + size_prefix(0), b"E_BAD_MESSAGE PUB invalid message body size 0"),
    (b"PUB t\n" + size_prefix(-1), b"E_BAD_MESSAGE PUB invalid message body size -1"),
    (b"PUB t\n" + size_prefix(1024 * 1024 + 1), b"E_BAD_MESSAGE PUB message too big 1048577 > 1048576"),
    (b"MPUB\n", b"E_INVALID MPUB insufficient number of parameters"),
    (b"MPUB t\n" + size_prefix(0), b"E_BAD_BODY MPUB invalid body size 0"),
    (b"MPUB t\n" + size_prefix(BIG + 1), b"E_BAD_BODY MPUB body too big 5242881 > 5242880"),
    (b"MPUB t\n" + size_prefix(8) + size_prefix(0), b"E_BAD_BODY MPUB invalid message count 0"),
    (b"MPUB t\n" + size_prefix(8) + size_prefix(-3), b"E_BAD_BODY MPUB invalid message count -3"),
    (b"MPUB t\n" + size_prefix(8) + size_prefix(1048576), b"E_BAD_BODY MPUB invalid message count 1048576"),
    (b"MPUB t\n" + size_prefix(8) + size_prefix(1) + size_prefix(0), b"E_BAD_MESSAGE MPUB invalid message(0) body size 0"),
    (
        b"MPUB t\n" + size_prefix(16) + size_prefix(2) + size_prefix(1) + b"x" + size_prefix(-7) + b"xxx",
        b"E_BAD_MESSAGE MPUB invalid message(1) body size -7",
    ),
    (
        b"MPUB t\n" + size_prefix(13) + size_prefix(1) + size_prefix(1024 * 1024 + 1) + b"x" * 5,
        b"E_BAD_MESSAGE MPUB message too big 1048577 > 1048576",
    ),
    (b"DPUB t\n", b"E_INVALID DPUB insufficient number of parameters"),
    (b"DPUB bad!topic 0\n", b'E_BAD_TOPIC DPUB topic name "bad!topic" is not valid'),
    (b"DPUB t abc\n", b"E_INVALID DPUB could not parse timeout abc"),
    (b"DPUB t -1\n", b"E_INVALID DPUB could not parse timeout -1"),
    (b"DPUB t 3600001\n", b"E_INVALID DPUB timeout 3600001 out of range 0-3600000"),
    (b"DPUB t 0\n" + size_prefix(0), b"E_BAD_MESSAGE DPUB invalid message body size 0"),
    (b"DPUB t 0\n" + size_prefix(1024 * 1024 + 1), b"E_BAD_MESSAGE DPUB message too big 1048577 > 1048576"),
    (b"RDY 1\n", b"E_INVALID cannot RDY in current state"),
    (b"FIN " + MSG_ID + b"\n", b"E_INVALID cannot FIN in current state"),
    (b"REQ " + MSG_ID + b" 0\n", b"E_INVALID cannot REQ in current state"),
    (b"TOUCH " + MSG_ID + b"\n", b"E_INVALID cannot TOUCH in current state"),
    (b"CLS\n", b"E_INVALID cannot CLS in current state"),
    (b"AUTH\n" + size_prefix(6) + b"secret", b"E_AUTH_DISABLED AUTH disabled"),
    (b"AUTH x\n", b"E_INVALID AUTH invalid number of parameters"),
    (b"AUTH\n" + size_prefix(0), b"E_BAD_BODY AUTH invalid body size 0"),
    (b"AUTH\n" + size_prefix(BIG + 1), b"E_BAD_BODY AUTH body too big 5242881 > 5242880"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "error"), FATAL_BEFORE_SUB)
async def test_fatal_error_before_sub_closes_the_connection(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(data)
        await assert_fatal(client, error)


FATAL_WHEN_SUBSCRIBED = [
    (b"SUB t c\n", b"E_INVALID cannot SUB in current state"),
    (b"AUTH\n" + size_prefix(1) + b"x", b"E_INVALID cannot AUTH in current state"),
    (b"RDY abc\n", b"E_INVALID RDY could not parse count abc"),
    (b"RDY -1\n", b"E_INVALID RDY could not parse count -1"),
    (b"RDY 2501\n", b"E_INVALID RDY count 2501 out of range 0-2500"),
    (b"FIN\n", b"E_INVALID FIN insufficient number of params"),
    (b"FIN 0123\n", b"E_INVALID invalid message ID"),
    (b"FIN " + MSG_ID + b"0\n", b"E_INVALID invalid message ID"),
    (b"REQ " + MSG_ID + b"\n", b"E_INVALID REQ insufficient number of params"),
    (b"REQ 0123 0\n", b"E_INVALID invalid message ID"),
    (b"REQ " + MSG_ID + b" abc\n", b"E_INVALID REQ could not parse timeout abc"),
    (b"TOUCH\n", b"E_INVALID TOUCH insufficient number of params"),
    (b"TOUCH 0123\n", b"E_INVALID invalid message ID"),
    (b"BOGUS\n", b"E_INVALID invalid command BOGUS"),
]


@pytest.mark.parametrize(("data", "error"), FATAL_WHEN_SUBSCRIBED)
async def test_fatal_error_when_subscribed_closes_the_connection(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.sub("t", "c")
        await client.send(data)
        await assert_fatal(client, error)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"FIN " + MSG_ID + b"\n", b"E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight"),
        (b"REQ " + MSG_ID + b" 0\n", b"E_REQ_FAILED REQ 0123456789abcdef failed ID not in flight"),
        (
            b"TOUCH " + MSG_ID + b"\n",
            b"E_TOUCH_FAILED TOUCH 0123456789abcdef failed ID not in flight",
        ),
    ],
)
async def test_fin_req_touch_of_unknown_id_fail_without_closing(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.subscribe("t", "c")
        await client.send(data)
        assert await client.read_error() == error
        await client.pub("t", b"still served")
        assert (await client.read_message()).body == b"still served"


@pytest.mark.parametrize("command", [b"FIN %s\n", b"REQ %s 0\n", b"TOUCH %s\n"])
async def test_only_the_owner_may_answer_a_message(
    address: tuple[str, int], command: bytes
) -> None:
    async with (
        await V2Client.connect(address) as owner,
        await V2Client.connect(address) as other,
    ):
        await owner.subscribe("t", "c")
        await other.subscribe("t", "c", rdy=0)
        await owner.pub("t", b"mine")
        msg = await owner.read_message()
        await other.send(command % msg.id)
        name = command.split(b" ")[0]
        expected = b"E_%s_FAILED %s %s failed client does not own message" % (name, name, msg.id)
        assert await other.read_error() == expected
        await other.sync()
        await owner.fin(msg.id)
        assert await owner.sync() == []


async def test_nop_has_no_answer(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.nop()
        await client.subscribe("t", "c")
        await client.nop()
        await client.pub("t", b"after nop")
        assert (await client.read_message()).body == b"after nop"


async def test_a_line_ending_in_crlf_is_accepted(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(b"SUB t c\r\n")
        await client.expect_response(b"OK")
        await client.send(b"RDY 1\r\nPUB t\r\n" + size_prefix(2) + b"hi")
        await client.expect_response(b"OK")
        assert (await client.read_message()).body == b"hi"


async def test_rdy_without_count_means_one(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.sub("t", "c")
        await client.mpub("t", [b"1", b"2"])
        await client.send(b"RDY\n")
        assert len(await client.sync()) == 1


async def test_mpub_to_an_invalid_topic_repeats_its_code(address: tuple[str, int]) -> None:
    """B.4: NSQ's MPUB error text starts with the code twice."""
    async with await V2Client.connect(address) as client:
        await client.send(
            b"MPUB bad!topic\n" + size_prefix(9) + size_prefix(1) + size_prefix(1) + b"x"
        )
        await assert_fatal(
            client, b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "bad!topic" is not valid'
        )


# -- limits -----------------------------------------------------------------------------------


async def test_max_rdy_count_bounds_rdy(start_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await start_nsqd(max_rdy_count=10)
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.subscribe("t", "c", rdy=10)
        await client.sync()
        await client.rdy(11)
        await assert_fatal(client, b"E_INVALID RDY count 11 out of range 0-10")


async def test_max_msg_size_bounds_pub_dpub_and_each_mpub_part(start_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await start_nsqd(max_msg_size=100)
    assert nsqd.tcp_address is not None
    address = nsqd.tcp_address
    async with await V2Client.connect(address) as client:
        await client.pub("t", b"x" * 100)
        await client.dpub("t", 0, b"x" * 100)
        await client.mpub("t", [b"x" * 100, b"y" * 100])
    cases = [
        (b"PUB t\n" + size_prefix(101), b"E_BAD_MESSAGE PUB message too big 101 > 100"),
        (b"DPUB t 0\n" + size_prefix(101), b"E_BAD_MESSAGE DPUB message too big 101 > 100"),
        (
            b"MPUB t\n" + size_prefix(9 + 105) + size_prefix(2) + size_prefix(1) + b"x"
            + size_prefix(101) + b"y" * 101,
            b"E_BAD_MESSAGE MPUB message too big 101 > 100",
        ),
    ]  # fmt: skip
    for data, error in cases:
        async with await V2Client.connect(address) as client:
            await client.send(data)
            await assert_fatal(client, error)


async def test_max_body_size_bounds_mpub_and_identify(start_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await start_nsqd(max_body_size=1000)
    assert nsqd.tcp_address is not None
    address = nsqd.tcp_address
    async with await V2Client.connect(address) as client:
        await client.mpub("t", [b"x" * 100] * 9)  # 4 + 9 * 104 = 940 bytes
        await client.identify(client_id="x" * 900)
    cases = [
        (b"MPUB t\n" + size_prefix(1001), b"E_BAD_BODY MPUB body too big 1001 > 1000"),
        (b"MPUB t\n" + size_prefix(1000) + size_prefix(200), b"E_BAD_BODY MPUB invalid message count 200"),
        (b"IDENTIFY\n" + size_prefix(1001), b"E_BAD_BODY IDENTIFY body too big 1001 > 1000"),
    ]  # fmt: skip
    for data, error in cases:
        async with await V2Client.connect(address) as client:
            await client.send(data)
            await assert_fatal(client, error)


async def test_max_channel_consumers_refuses_one_more_sub(start_nsqd: StartNSQD) -> None:
    nsqd: NSQD = await start_nsqd(max_channel_consumers=1)
    assert nsqd.tcp_address is not None
    address = nsqd.tcp_address
    async with await V2Client.connect(address) as first:
        await first.sub("t", "c")
        async with await V2Client.connect(address) as other_channel:
            await other_channel.sub("t", "other")
        async with await V2Client.connect(address) as second:
            await second.send(b"SUB t c\n")
            await assert_fatal(
                second, b"E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1"
            )
    # Once the first consumer is gone its place is free again.
    await wait_until(lambda: not nsqd.topics["t"].channels["c"].clients)
    async with await V2Client.connect(address) as third:
        await third.sub("t", "c")


# -- heartbeats -----------------------------------------------------------------------------


async def test_heartbeats_arrive_at_the_identified_interval(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.identify(heartbeat_interval=1000)
        start = trio.current_time()
        assert await client.read_frame(skip_heartbeats=False) == (FRAME_TYPE_RESPONSE, HEARTBEAT)
        assert trio.current_time() - start >= 0.9


async def test_a_silent_client_is_closed_after_two_heartbeat_intervals(
    address: tuple[str, int],
) -> None:
    async with await V2Client.connect(address) as client:
        client.reply_to_heartbeats = False
        await client.identify(heartbeat_interval=1000)
        start = trio.current_time()
        await client.expect_closed()
        assert trio.current_time() - start >= 1.9
        assert client.heartbeats >= 1


async def test_sub_is_refused_with_heartbeats_disabled(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        assert await client.identify(heartbeat_interval=-1) == b"OK"
        await client.pub("t", b"a producer without heartbeats is fine")
        await client.send(b"SUB t c\n")
        await assert_fatal(client, b"E_INVALID cannot SUB with heartbeats disabled")


async def test_identify_body_read_in_pieces(address: tuple[str, int]) -> None:
    """A command split across TCP segments is parsed once it is whole."""
    body = json.dumps({"feature_negotiation": True, "client_id": "pieces"}).encode()
    data = b"IDENTIFY\n" + struct.pack(">i", len(body)) + body
    async with await V2Client.connect(address) as client:
        for i in range(0, len(data), 7):
            await client.send(data[i : i + 7])
        assert json.loads(await client.read_response())["max_rdy_count"] == 2500
