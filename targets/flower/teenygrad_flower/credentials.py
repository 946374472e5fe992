"""TLS certificates and SuperNode keys for a local or test federation (Python's `cryptography`, a Flower dependency).

    python -m teenygrad_flower.credentials DIR --supernodes 3 [--host 192.168.1.20]

writes DIR/ca.crt, DIR/server.pem and DIR/server.key (the SuperLink's certificate for 127.0.0.1, localhost and
any --host), and DIR/supernode-<i> / DIR/supernode-<i>.pub (EC P-384 key pairs in OpenSSH format, as
`flower-supernode --auth-supernode-private-key` and `flwr supernode register` take them).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_FOR = datetime.timedelta(days=30)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "teenygrad federation"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())


def write_tls(out: Path, hosts: list[str]) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("teenygrad CA")).issuer_name(_name("teenygrad CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in ["127.0.0.1", *hosts]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
              .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .sign(ca_key, hashes.SHA256()))
    (out / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (out / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (out / "server.key").write_bytes(_pem_key(server_key))
    (out / "server.key").chmod(0o600)


def write_supernode_key(out: Path, name: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    (out / name).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    (out / name).chmod(0o600)
    (out / f"{name}.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--supernodes", type=int, default=0, help="SuperNode key pairs to write")
    parser.add_argument("--host", action="append", default=[], help="another address the SuperLink's certificate names")
    parser.add_argument("--no-tls", action="store_true", help="only the SuperNode keys")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if not args.no_tls:
        write_tls(args.dir, args.host)
    for i in range(args.supernodes):
        write_supernode_key(args.dir, f"supernode-{i}")


if __name__ == "__main__":
    main()
