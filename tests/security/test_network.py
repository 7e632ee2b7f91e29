"""Network: a run has only a loopback interface, so nothing leaves the container."""

import docker
import pytest

from app.sandbox import RunStatus

PROBE = (
    "import socket, sys\n"
    "def tcp(host, port):\n"
    "    family = socket.AF_INET6 if ':' in host else socket.AF_INET\n"
    "    s = socket.socket(family, socket.SOCK_STREAM)\n"
    "    s.settimeout(2)\n"
    "    try:\n"
    "        s.connect((host, port)); return 'OPEN'\n"
    "    except OSError as e:\n"
    "        return 'blocked'\n"
)


@pytest.fixture(scope="module")
def bridge_gateway() -> str:
    client = docker.from_env()
    try:
        config = client.api.inspect_network("bridge")["IPAM"]["Config"]
    finally:
        client.close()
    return next((c["Gateway"] for c in config if c.get("Gateway")), "172.17.0.1")


async def test_tcp_egress_to_public_addresses_fails(attack):
    code = PROBE + (
        "for target in [('1.1.1.1', 443), ('8.8.8.8', 53), ('93.184.216.34', 80),\n"
        "               ('2606:4700:4700::1111', 443)]:\n"
        "    print(tcp(*target))\n"
    )
    result = await attack.run(code, timeout=15)
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout.split() == ["blocked"] * 4


async def test_udp_egress_fails(attack):
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for target in [('8.8.8.8', 53), ('1.1.1.1', 123), ('255.255.255.255', 67)]:\n"
        "    try:\n"
        "        s.sendto(b'x' * 32, target); print('SENT')\n"
        "    except OSError as e:\n"
        "        print('blocked')\n"
    )
    result = await attack.run(code)
    assert result.stdout.split() == ["blocked"] * 3


async def test_dns_resolution_fails(attack):
    code = (
        "import socket\n"
        "for name in ('example.com', 'example.org', 'host.docker.internal'):\n"
        "    try:\n"
        "        socket.getaddrinfo(name, 443); print('RESOLVED', name)\n"
        "    except OSError:\n"
        "        print('no dns')\n"
    )
    result = await attack.run(code, timeout=15)
    assert result.stdout.split("\n")[:3] == ["no dns"] * 3


async def test_link_local_metadata_service_is_unreachable(attack):
    code = PROBE + "print(tcp('169.254.169.254', 80), tcp('fd00:ec2::254', 80))\n"
    result = await attack.run(code)
    assert result.stdout == "blocked blocked\n"


async def test_docker_bridge_gateway_and_engine_ports_are_unreachable(attack, bridge_gateway):
    code = PROBE + (
        f"print([tcp({bridge_gateway!r}, p) for p in (2375, 2376, 22, 80)])\n"
        "print([tcp('127.0.0.1', p) for p in (2375, 2376)])\n"
    )
    result = await attack.run(code, timeout=15)
    assert result.stdout.count("blocked") == 6 and "OPEN" not in result.stdout


async def test_raw_and_packet_sockets_cannot_reach_anything(attack):
    # runc refuses raw sockets (no CAP_NET_RAW); gVisor's own network stack may hand one out,
    # but with no interface but loopback nothing it sends can leave.
    code = (
        "import socket\n"
        "for family, kind, proto in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),\n"
        "                            (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)):\n"
        "    try:\n"
        "        s = socket.socket(family, kind, proto)\n"
        "    except OSError:\n"
        "        print('refused'); continue\n"
        "    try:\n"
        "        s.sendto(b'\\x08\\x00\\xf7\\xff' + b'\\x00' * 4, ('8.8.8.8', 0)); print('SENT')\n"
        "    except OSError:\n"
        "        print('unreachable')\n"
        "try:\n"
        "    p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        "    print('packet socket on', [n for _, n in socket.if_nameindex()])\n"
        "except OSError:\n"
        "    print('refused')\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
    )
    result = await attack.run(code)
    lines = result.stdout.splitlines()
    assert "SENT" not in lines
    if attack.runtime == "runc":
        assert lines[:3] == ["refused"] * 3
    assert lines[2] in ("refused", "packet socket on ['lo']")
    assert lines[-1] == "['lo']"


async def test_only_loopback_names_resolve_and_nothing_of_the_hosts_resolver_shows(attack):
    # The namespace is the runtime's own: no resolver of the host's is copied in, while the
    # loopback names (and the sandbox's hostname) still work for code that serves itself.
    code = (
        "import socket\n"
        "print(repr(open('/etc/resolv.conf').read()))\n"
        "print(socket.gethostbyname('localhost'), socket.gethostbyname(socket.gethostname()))\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "c = socket.create_connection(('localhost', s.getsockname()[1]), timeout=2)\n"
        "peer, _ = s.accept(); c.sendall(b'ping'); print(peer.recv(4).decode())\n"
        "try:\n"
        "    open('/etc/hosts', 'a')\n"
        "except OSError:\n"
        "    print('hosts read-only')\n"
    )
    result = await attack.run(code, timeout=15)
    assert result.status is RunStatus.OK, result.stderr
    assert result.stdout.splitlines() == [
        "''",
        "127.0.0.1 127.0.1.1",
        "ping",
        "hosts read-only",
    ]
