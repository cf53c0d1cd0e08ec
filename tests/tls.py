"""Certificates and a password file made at test time for a TLS Mosquitto."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert), cwd=directory)  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost, signed by `ca`: (cert, key)."""
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(csr), cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=directory)  # fmt: skip
    return cert, key


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file made with mosquitto_passwd."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True, capture_output=True)
    return path


def tls_broker_settings(directory: Path) -> tuple[str, Path, Path]:
    """Mosquitto lines for TLS + passwords on the test listener; returns (lines, good CA, wrong CA)."""
    ca = make_ca(directory, "vesper-test-ca")
    wrong_ca = make_ca(directory, "some-other-ca")
    cert, key = make_server_cert(directory, ca)
    passwords = make_password_file(directory / "passwd", {"vesper": "s3cret-pass", "bell-1": "device-pass"})
    lines = (
        f"cafile {ca[0]}\ncertfile {cert}\nkeyfile {key}\n"
        f"password_file {passwords}\nallow_anonymous false\n"
    )
    return lines, ca[0], wrong_ca[0]
