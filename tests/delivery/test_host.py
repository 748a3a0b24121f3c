"""What the command learns about the machine: kube context, state backend, Docker daemon."""

import json
import socket
from pathlib import Path

from venta.host import Host, docker_daemon, kube_context, pulumi_env

KUBECONFIG_WITH_CONTEXT = """\
apiVersion: v1
kind: Config
current-context: {current}
contexts:
- name: kind-venta
  context: {{cluster: kind-venta, user: kind-venta}}
"""


def test_kube_context_is_the_current_one_when_the_kubeconfig_defines_it(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG_WITH_CONTEXT.format(current="kind-venta"))
    assert kube_context(Host(env={}, home=tmp_path)) == "kind-venta"


def test_a_current_context_that_is_not_defined_is_no_context(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG_WITH_CONTEXT.format(current="gone"))
    assert kube_context(Host(env={}, home=tmp_path)) is None


def test_no_kubeconfig_or_an_unreadable_one_is_no_context(tmp_path: Path) -> None:
    assert kube_context(Host(env={}, home=tmp_path)) is None
    broken = tmp_path / "broken"
    broken.write_text("current-context: [unclosed")
    assert kube_context(Host(env={"KUBECONFIG": str(broken)}, home=tmp_path)) is None


def test_kubeconfig_files_merge_like_kubectl(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("current-context: kind-venta\n")
    second.write_text(KUBECONFIG_WITH_CONTEXT.format(current="other"))
    host = Host(env={"KUBECONFIG": f"{tmp_path / 'missing'}:{first}:{second}"}, home=tmp_path)
    assert kube_context(host) == "kind-venta"


def test_an_explicit_backend_wins_and_keeps_an_existing_passphrase(tmp_path: Path) -> None:
    env = {"PULUMI_BACKEND_URL": "s3://bucket/venta", "PULUMI_CONFIG_PASSPHRASE": "p"}
    settings = pulumi_env(Host(env=env, home=tmp_path))
    assert "PULUMI_BACKEND_URL" not in settings.variables
    assert "PULUMI_CONFIG_PASSPHRASE" not in settings.variables
    assert (settings.backend, settings.secrets_provider) == ("s3://bucket/venta", "passphrase")


def test_a_pulumi_cloud_login_keeps_its_own_secrets(tmp_path: Path) -> None:
    (tmp_path / ".pulumi").mkdir()
    (tmp_path / ".pulumi" / "credentials.json").write_text(json.dumps({"current": "https://api.pulumi.com"}))
    settings = pulumi_env(Host(env={}, home=tmp_path))
    assert settings.variables == {"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_K8S_ENABLE_PATCH_FORCE": "true"}
    assert settings.secrets_provider is None


def test_without_a_backend_state_goes_to_local_files(tmp_path: Path) -> None:
    settings = pulumi_env(Host(env={}, home=tmp_path))
    assert settings.variables["PULUMI_BACKEND_URL"] == f"file://{tmp_path}/.venta/state"
    assert settings.variables["PULUMI_CONFIG_PASSPHRASE"] == ""
    assert settings.secrets_provider == "passphrase"


def test_docker_daemon_is_found_only_where_one_listens(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    assert not docker_daemon(Host(env={}, home=tmp_path, docker_socket=path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert docker_daemon(Host(env={}, home=tmp_path, docker_socket=path))
    assert docker_daemon(Host(env={"DOCKER_HOST": "tcp://10.0.0.5:2376"}, home=tmp_path, docker_socket=path))
