"""A small test / pilot PKI for the broker: one CA, one broker certificate, client certificates.

Tests import :func:`make_test_pki`; for a pilot an operator runs it as a script::

    python tests/deploy/pki.py /etc/gridalarm/pki gw-01 gw-02 --client cloud --host broker.example

Each client certificate carries CN = the client's id (a gateway id, or ``cloud``); with
``use_identity_as_username true`` Mosquitto uses that CN as the username the ACL's ``%u``
stands for. The CA key is written beside the certificates: for anything beyond a pilot,
keep it offline and issue certificates from a real PKI.

This lives under ``tests/`` because ``deploy/`` holds configuration, not code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiPaths:
    """Paths of everything :func:`make_test_pki` wrote."""

    ca_cert: Path
    ca_key: Path
    server: KeyPair
    clients: dict[str, KeyPair] = field(default_factory=dict)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gridalarm"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: str,
    issuer_name: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    server_names: list[str] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if server_names is not None:
        sans: list[x509.GeneralName] = []
        for host in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def make_test_pki(
    directory: str | os.PathLike[str],
    gateway_ids: list[str],
    *,
    extra_clients: tuple[str, ...] = ("cloud",),
    server_names: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> PkiPaths:
    """Create a CA, a broker certificate and one client certificate per id in *directory*.

    Client ids are *gateway_ids* followed by *extra_clients* (by default ``cloud``); each
    certificate's CN is its id. The broker certificate names *server_names* as SANs (IP
    addresses as IP SANs, the rest as DNS SANs). Files: ``ca.crt``/``ca.key``,
    ``server.crt``/``server.key``, ``{id}.crt``/``{id}.key``; keys are mode 0600.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("gridalarm test CA")
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_cert_path, ca_key_path = out / "ca.crt", out / "ca.key"
    _write_cert(ca_cert, ca_cert_path)
    _write_key(ca_key, ca_key_path)

    def issue(name: str, file_stem: str, hosts: list[str] | None) -> KeyPair:
        cert, key = _issue(name, ca_name, ca_key, server_names=hosts)
        pair = KeyPair(out / f"{file_stem}.crt", out / f"{file_stem}.key")
        _write_cert(cert, pair.cert)
        _write_key(key, pair.key)
        return pair

    server = issue(server_names[0], "server", list(server_names))
    clients = {cid: issue(cid, cid, None) for cid in [*gateway_ids, *extra_clients]}
    return PkiPaths(ca_cert_path, ca_key_path, server, clients)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("gateway_ids", nargs="+", metavar="GATEWAY_ID")
    parser.add_argument(
        "--client",
        action="append",
        default=None,
        metavar="ID",
        help="extra client certificate (repeatable; default: cloud)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=None,
        metavar="NAME_OR_IP",
        help="broker SAN (repeatable; default: 127.0.0.1 and localhost)",
    )
    args = parser.parse_args(argv)
    pki = make_test_pki(
        args.directory,
        args.gateway_ids,
        extra_clients=tuple(args.client or ("cloud",)),
        server_names=tuple(args.host or ("127.0.0.1", "localhost")),
    )
    print(f"CA          {pki.ca_cert}")
    print(f"broker      {pki.server.cert} {pki.server.key}")
    for cid, pair in pki.clients.items():
        print(f"client {cid:<6} {pair.cert} {pair.key}")


if __name__ == "__main__":
    main()
