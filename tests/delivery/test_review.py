"""`venta preview` and `venta drift`, the entry points the pull-request and nightly workflows call."""

from pathlib import Path

import pytest

from stacks.catalog import SERVICE_NAMES
from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine, RecordingStack
from venta.cli import main
from venta.engine import Finding, PreviewReport, Step
from venta.host import Host

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def one_setting_change() -> PreviewReport:
    steps = (
        Step("same", DEPLOYMENT, "api-gateway"),
        Step("update", DEPLOYMENT, "geolocation", ("spec.template.spec.containers[0].env",)),
        Step("read", "pulumi:pulumi:StackReference", "self"),
    )
    findings = (Finding("image-pinned-by-digest", "advisory", "not pinned", "geolocation"),)
    return PreviewReport({"same": 99, "update": 1}, steps, findings)


def test_the_committed_prod_files_stop_a_policy_preview_with_one_line_naming_every_missing_pin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Until a release pins the services and an operator the upstream images, prod's PR preview
    fails before the engine runs, with exactly the pins that are missing."""
    monkeypatch.chdir(REPO)
    engine = RecordingEngine(RecordingStack("prod"))
    summary = tmp_path / "preview.md"
    argv = ["preview", "prod", "--policy", "--summary", str(summary)]
    assert main(argv, engine=engine, host=make_host(tmp_path)) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1, err_lines
    [line] = err_lines
    assert "image-pinned-by-digest is mandatory in policy/config/prod.json" in line
    for service in ("api-gateway", "file-management", "webhooks"):
        assert f'venta:images.digests["{service}"]' in line
    stores = ("venta:postgres.image", "venta:redis.image", "venta:nats.image")
    # prod ships its monitoring, so the exporters' upstream images need their pins too.
    exporters = tuple(f"venta:monitoring.exporters.{store}Image" for store in ("postgres", "redis", "nats"))
    for setting in stores + exporters:
        assert setting in line
    assert f"missing {len(SERVICE_NAMES) + len(stores) + len(exporters)}: " in line
    assert engine.opened == []  # the engine never ran
    assert line in summary.read_text()  # the pull request's comment says the same


def test_a_one_setting_change_previews_as_exactly_that_change(
    project: Path, host: Host, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = RecordingStack("dev", next_preview=one_setting_change())
    summary = tmp_path / "preview.md"
    code = main(
        ["preview", "dev", "--policy", "--summary", str(summary)], engine=RecordingEngine(stack), host=host
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "  update Deployment geolocation: spec.template.spec.containers[0].env" in out
    assert "api-gateway" not in out  # unchanged resources are not listed
    assert "policy: passed (1 advisory finding(s))" in out
    markdown = summary.read_text()
    assert "| update | Deployment | `geolocation` | `spec.template.spec.containers[0].env` |" in markdown
    assert "advisory `image-pinned-by-digest` `geolocation` not pinned" in markdown


def test_an_unchanged_preview_says_so(project: Path, host: Host, tmp_path: Path) -> None:
    stack = RecordingStack("dev", next_preview=PreviewReport({"same": 100}, (), ()))
    summary = tmp_path / "preview.md"
    assert main(["preview", "dev", "--summary", str(summary)], engine=RecordingEngine(stack), host=host) == 0
    assert "No resource would change." in summary.read_text()


def test_a_refused_preview_fails_and_its_summary_says_why(
    project: Path, host: Host, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    findings = (Finding("spread-across-nodes", "mandatory", "no topology spread", "geolocation"),)
    refused = PreviewReport({}, (), findings, error="error: preview failed: 1 mandatory policy violation")
    summary = tmp_path / "preview.md"
    stack = RecordingStack("dev", next_preview=refused)
    assert (
        main(
            ["preview", "dev", "--policy", "--summary", str(summary)],
            engine=RecordingEngine(stack),
            host=host,
        )
        == 1
    )
    assert "1 mandatory violation(s), the update would be refused" in capsys.readouterr().out
    markdown = summary.read_text()
    assert "**The preview failed:**" in markdown and "mandatory `spread-across-nodes`" in markdown


def test_drift_refreshes_and_names_what_changed_behind_pulumis_back(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drifted = (
        Step("refresh", "kubernetes:apps/v1:StatefulSet", "postgres"),
        Step("update", "kubernetes:apps/v1:StatefulSet", "postgres", ("spec.replicas",)),
        Step("create", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "geolocation-network"),
    )
    stack = RecordingStack("dev", next_preview=PreviewReport({"update": 1, "create": 1}, drifted, ()))
    report = tmp_path / "drift.md"
    host = make_host(tmp_path, kube_context="kind-venta")
    assert main(["drift", "dev", "--report", str(report)], engine=RecordingEngine(stack), host=host) == 1
    assert stack.operations()[-1] == ("preview", "refresh")
    out = capsys.readouterr().out
    assert "drift: 2 resource(s) differ from what the program declares:" in out
    assert "  update StatefulSet postgres: spec.replicas" in out
    assert "  create NetworkPolicy geolocation-network" in out
    assert "- update StatefulSet `postgres`: spec.replicas" in report.read_text()


def test_no_drift_passes(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = RecordingStack("dev", next_preview=PreviewReport({"same": 100}, (), ()))
    host = make_host(tmp_path, kube_context="kind-venta")
    assert main(["drift", "dev"], engine=RecordingEngine(stack), host=host) == 0
    assert "drift: none; dev is what the program declares" in capsys.readouterr().out


def test_drift_without_a_cluster_is_a_usage_error(
    project: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["drift", "dev"], engine=RecordingEngine(RecordingStack("dev")), host=host)
    assert raised.value.code == 2
    assert "a drift check compares with a cluster" in capsys.readouterr().err


CONFLICT = """error: Preview failed: 1 error occurred:
	* the Kubernetes API server reported that "venta-dev/redis" failed to fully initialize or become live: \
Server-Side Apply field conflict detected. See https://www.pulumi.com/registry/packages/kubernetes/ for help.
The resource managed by field manager "pulumi-kubernetes-7" had an apply conflict: Apply failed with 1 \
conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas
error: preview failed"""


def test_a_field_someone_else_took_over_is_drift_named_with_who_changed_it(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = RecordingStack("dev", next_preview=PreviewReport({}, (), (), error=CONFLICT))
    host = make_host(tmp_path, kube_context="kind-venta")
    assert main(["drift", "dev"], engine=RecordingEngine(stack), host=host) == 1
    out = capsys.readouterr().out
    assert "  conflict changed by kubectl (scale) venta-dev/redis: spec.replicas" in out


def test_a_preview_that_fails_otherwise_is_an_error_not_drift(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = PreviewReport({}, (), (), error="error: could not connect to the cluster")
    host = make_host(tmp_path, kube_context="kind-venta")
    assert (
        main(["drift", "dev"], engine=RecordingEngine(RecordingStack("dev", next_preview=broken)), host=host)
        == 1
    )
    assert "venta: drift dev failed:\nerror: could not connect to the cluster" in capsys.readouterr().err


def test_pins_are_read_from_the_project_venta_runs_on(tmp_path: Path) -> None:
    """A release and an operator pin what the check named, in the project's own stack file (a copy
    here, as the deploy job's checkout): then nothing is missing."""
    import yaml

    from venta.pins import unpinned_images

    missing = unpinned_images(REPO, "prod")
    assert missing
    document = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    config = document["config"]
    for item in missing:
        for setting in item.setting.split(" (")[0].split(", "):
            key = setting.removeprefix("venta:")
            if key.startswith("images.digests"):
                service = key.split('"')[1]
                config["venta:images"].setdefault("digests", {})[service] = "sha256:" + "a" * 64
                continue
            section, field = key.rsplit(".", 1)
            node = config.setdefault(f"venta:{section.split('.')[0]}", {})
            for part in section.split(".")[1:]:
                node = node.setdefault(part, {})
            node[field] = f"{item.image}@sha256:{'b' * 64}"
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    assert unpinned_images(tmp_path, "prod") == []
