"""How the API server proves itself to the kubelet, as kubeadm sets it up: a client CA the kubelet
trusts, and a client certificate for the API server signed by it. The kubelet then authenticates
every request to its API (exec, logs) and asks the API server whether it is allowed."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

API_SERVER_CLIENT = "kube-apiserver-kubelet-client"  # the user kubeadm names it


@dataclass(frozen=True)
class KubeletClientPki:
    ca: Path  # the kubelet's clientCAFile
    certificate: Path  # the API server's --kubelet-client-certificate
    key: Path  # and --kubelet-client-key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def kubelet_client_pki(directory: Path) -> KubeletClientPki:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("venta-kubelet-client-ca"))
        .issuer_name(_name("venta-kubelet-client-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    client = (
        x509.CertificateBuilder()
        .subject_name(_name(API_SERVER_CLIENT))
        .issuer_name(ca.subject)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = KubeletClientPki(directory / "ca.crt", directory / "client.crt", directory / "client.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.certificate.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pki.key.chmod(0o600)
    return pki
