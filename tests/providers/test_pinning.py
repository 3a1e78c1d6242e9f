"""run_model(connect_to=…): the connection goes to a vetted address, the name stays the URL's.

The name in these URLs never resolves (``.invalid``/``.test`` under a resolver that
knows nothing), so a request that succeeds cannot have used DNS; servers listen on
distinct loopback addresses so the one that answered tells where the engine connected.
"""
from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path
from typing import Iterator

import pytest

from chalicelib.providers import ModelTarget, pinning, run_model
from devstack.fake_providers import PATH_PREFIXES, FakeProviderServer

from .conftest import API_KEY, SETTINGS


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names do not resolve (numeric hosts still do); returns the names looked up."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in str(host) else socket.AF_INET, str(host))
        except OSError:
            looked_up.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def url_for(server: FakeProviderServer, host: str, kind: str = "openai") -> str:
    scheme = "https" if server.tls else "http"
    return f"{scheme}://{host}:{server.port}{PATH_PREFIXES[kind]}"


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_a_pinned_request_connects_to_the_vetted_address_and_keeps_the_name(kind, no_dns):
    with FakeProviderServer(host="127.0.0.2") as server:
        t = ModelTarget("mine", kind, url_for(server, "llm.invalid", kind), "t", "mine/t")
        result = run_model(t, SETTINGS, API_KEY, connect_to=["127.0.0.2"])
        sent = server.requests[-1]
    assert result["success"] is True, result
    assert sent.headers["host"] == f"llm.invalid:{server.port}"
    assert "llm.invalid" not in no_dns


def test_vetted_addresses_are_tried_in_order(no_dns):
    with FakeProviderServer(host="127.0.0.2") as server:
        t = ModelTarget("mine", "openai", url_for(server, "llm.invalid"), "t", "mine/t")
        # nothing listens on 127.0.0.3 at that port: refused, then the next address
        result = run_model(t, SETTINGS, API_KEY, connect_to=["127.0.0.3", "127.0.0.2"])
    assert result["success"] is True, result


def test_no_vetted_address_answering_is_a_network_failure(no_dns, closed_port):
    t = ModelTarget("mine", "openai", f"http://llm.invalid:{closed_port}/v1", "t", "mine/t")
    result = run_model(t, SETTINGS, API_KEY, connect_to=["127.0.0.1"])
    assert result["error_type"] == "network", result
    assert "llm.invalid" not in no_dns


def test_an_address_that_is_not_one_fails_before_sending():
    t = ModelTarget("mine", "openai", "http://llm.invalid:9/v1", "t", "mine/t")
    result = run_model(t, SETTINGS, API_KEY, connect_to=["llm.invalid"])
    assert result["error_type"] == "network" and "cannot send the request" in result["error"], result


# --------------------------------------------------------------------------- TLS


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``name`` (DNS name only, no IP address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "engine test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviderServer]:
    """HTTPS on 127.0.0.2 with a certificate for ``llm.test``, trusted by the engine."""
    ca, cert, key = _certificate(tmp_path, "llm.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(ca))
    monkeypatch.setattr(pinning, "shared_ssl_context", lambda: client_context)
    with FakeProviderServer(host="127.0.0.2", tls=server_context) as server:
        yield server


def test_tls_to_a_pinned_address_sends_and_checks_the_name(tls_server, no_dns):
    t = ModelTarget("mine", "openai", url_for(tls_server, "llm.test"), "t", "mine/t")
    result = run_model(t, SETTINGS, API_KEY, connect_to=["127.0.0.2"])
    assert result["success"] is True, result
    assert tls_server.sni_names == ["llm.test"]
    assert tls_server.requests[-1].headers["host"] == f"llm.test:{tls_server.port}"


def test_tls_refuses_a_certificate_for_another_name(tls_server, no_dns):
    t = ModelTarget("mine", "openai", url_for(tls_server, "other.test"), "t", "mine/t")
    result = run_model(t, SETTINGS, API_KEY, connect_to=["127.0.0.2"])
    assert result["error_type"] == "network", result
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]
    assert tls_server.requests == []
