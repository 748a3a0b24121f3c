"""The GitHub workflows: valid against the published schema, and doing what the README says they do."""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.repo_files import (
    CATALOG_SERVICES,
    ROOT,
    WORKFLOWS,
    check_schema,
    load_yaml_strings,
    readme_fresh_machine_commands,
    stack_names,
    workflow,
)

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
DIGESTS_ARG = '--digests "$RUNNER_TEMP/digests"'
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@([0-9a-f]{40}|v\d+\.\d+\.\d+)$")


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def action_steps(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(doc) if step.get("uses", "").startswith(f"{action}@")]


def test_every_workflow_validates_against_the_github_workflow_schema() -> None:
    assert {path.name for path in WORKFLOW_FILES} == {"test.yml", "preview.yml", "deploy.yml", "drift.yml"}
    result = check_schema("vendor.github-workflows", *WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Any) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps: oops\n")
    assert check_schema("vendor.github-workflows", broken).returncode == 1


def test_the_test_job_runs_the_readmes_test_command_on_every_push_and_pull_request() -> None:
    setup_and_up, test_command = readme_fresh_machine_commands()
    assert test_command == "bash scripts/test.sh"
    assert setup_and_up == "bash scripts/setup.sh && .venv/bin/venta up dev"
    doc = workflow("test.yml")
    # Pushes to main and tags run the tests inside deploy.yml (which calls this workflow).
    assert set(doc["on"]) == {"push", "pull_request", "workflow_call"}
    assert doc["on"]["push"] == {"branches-ignore": ["main"]}
    assert [step.get("run") for step in doc["jobs"]["test"]["steps"]][-1] == test_command


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_or_an_exact_release(path: Any) -> None:
    uses = [step["uses"] for step in steps(workflow(path.name)) if "uses" in step]
    assert uses
    assert [use for use in uses if not PINNED.match(use)] == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_credentials_come_only_from_repository_secrets(path: Any) -> None:
    text = path.read_text()
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "KUBECONFIG_DATA"):
        for value in re.findall(rf"^\s+{name}: (.*)$", text, flags=re.M):
            assert value.startswith("${{") and "secrets." in value, f"{name}: {value}"
    for password in re.findall(r"^\s+(?:password|github-token): (.*)$", text, flags=re.M):
        assert password.startswith("${{ secrets."), password


def test_pull_requests_preview_every_stack_with_the_policy_pack_and_a_comment() -> None:
    doc = workflow("preview.yml")
    assert set(doc["on"]) == {"pull_request"}
    job = doc["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == stack_names() == ["dev", "prod"]
    runs = [step.get("run", "") for step in job["steps"]]
    summary = '"$RUNNER_TEMP/preview.md"'
    assert f".venv/bin/venta preview ${{{{ matrix.stack }}}} --policy --summary {summary}" in runs
    [comment] = action_steps(doc, "marocchino/sticky-pull-request-comment")
    assert comment["if"] == "always()"  # a refused preview is commented on too
    assert comment["with"]["path"] == "${{ runner.temp }}/preview.md"
    assert comment["with"]["header"] == "preview-${{ matrix.stack }}"
    assert doc["permissions"]["pull-requests"] == "write"


def test_a_preview_never_builds_or_pushes_images() -> None:
    doc = workflow("preview.yml")
    assert action_steps(doc, "docker/build-push-action") == []
    assert action_steps(doc, "docker/login-action") == []
    # Both committed stacks reference images (images.build: false); a preview keeps them so.
    for stack in stack_names():
        assert load_yaml_strings(ROOT / f"Pulumi.{stack}.yaml")["config"]["venta:images"]["build"] == "false"


def test_main_pushes_images_tagged_with_the_commit_then_updates_dev() -> None:
    doc = workflow("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    images = doc["jobs"]["images"]
    [build] = action_steps(doc, "docker/build-push-action")
    assert build["with"]["push"] == "true"
    assert "${{ env.REGISTRY }}/${{ matrix.service }}:${{ github.sha }}" in build["with"]["tags"]
    assert build["with"]["file"] == "services/Dockerfile"
    assert images["permissions"]["packages"] == "write"
    # One image per service of the catalog, in its order: a new service fails here until it is added.
    assert images["strategy"]["matrix"]["service"] == CATALOG_SERVICES
    up_dev = doc["jobs"]["up-dev"]
    assert (up_dev["needs"], up_dev["if"]) == ("images", "github.ref == 'refs/heads/main'")
    runs = [step.get("run") for step in up_dev["steps"]]
    assert runs[-2:] == [
        f'.venv/bin/venta deploy dev "$GITHUB_SHA" --policy {DIGESTS_ARG}',
        'bash scripts/ci/record-release.sh dev "$GITHUB_SHA"',
    ]


def test_a_version_tag_updates_prod_behind_an_environment_approval() -> None:
    doc = workflow("deploy.yml")
    assert doc["on"]["push"]["tags"] == ["v*"]
    up_prod = doc["jobs"]["up-prod"]
    assert up_prod["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert up_prod["environment"] == "production"
    assert [step.get("run") for step in up_prod["steps"]][-2:] == [
        f'.venv/bin/venta deploy prod "$GITHUB_REF_NAME" --policy {DIGESTS_ARG}',
        'bash scripts/ci/record-release.sh prod "$GITHUB_REF_NAME"',
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_deploy_runs_only_after_the_tests_passed_for_that_commit(stack: str) -> None:
    """Every deploy job depends, through `needs`, on a job that runs the test workflow."""
    jobs = workflow("deploy.yml")["jobs"]
    tests = {name for name, job in jobs.items() if job.get("uses") == "./.github/workflows/test.yml"}
    assert tests, "deploy.yml must call the test workflow"
    assert "workflow_call" in workflow("test.yml")["on"]

    def upstream(name: str) -> set[str]:
        needs = jobs[name].get("needs", [])
        direct = {needs} if isinstance(needs, str) else set(needs)
        return direct.union(*(upstream(job) for job in direct)) if direct else set()

    assert upstream(f"up-{stack}") & tests
    # A deploy job that skipped `needs` would run at once: every job but the tests needs something.
    assert [name for name, job in jobs.items() if name not in tests and not job.get("needs")] == []


def test_deploys_and_drift_checks_of_one_stack_share_a_queue() -> None:
    deploy, drift = workflow("deploy.yml"), workflow("drift.yml")
    for stack in ("dev", "prod"):
        group = deploy["jobs"][f"up-{stack}"]["concurrency"]
        assert group == {"group": f"pulumi-{stack}", "cancel-in-progress": "false"}
    drift_group = drift["jobs"]["drift"]["concurrency"]
    assert drift_group == {"group": "pulumi-${{ matrix.stack }}", "cancel-in-progress": "false"}


def test_a_nightly_drift_check_previews_each_stack_expecting_no_changes() -> None:
    doc = workflow("drift.yml")
    assert doc["on"]["schedule"][0]["cron"].count(" ") == 4
    assert sorted(doc["jobs"]["drift"]["strategy"]["matrix"]["stack"]) == stack_names()
    runs = [step.get("run") for step in doc["jobs"]["drift"]["steps"]]
    assert runs[-1] == '.venv/bin/venta drift ${{ matrix.stack }} --report "$GITHUB_STEP_SUMMARY"'


def test_each_image_job_records_the_digest_it_pushed() -> None:
    job = workflow("deploy.yml")["jobs"]["images"]
    names = [step.get("uses", "").partition("@")[0] for step in job["steps"]]
    build, record, upload = job["steps"][names.index("docker/build-push-action") :][:3]
    assert record["env"]["DIGEST"] == f"${{{{ steps.{build['id']}.outputs.digest }}}}"
    assert record["run"] == 'bash scripts/ci/digest-file.sh "$SERVICE" "$DIGEST" > "digest-$SERVICE.json"'
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["name"] == "digest-${{ matrix.service }}"
    assert upload["with"]["path"] == "digest-${{ matrix.service }}.json"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploys_pin_every_image_to_the_digests_the_image_jobs_pushed(stack: str) -> None:
    job = workflow("deploy.yml")["jobs"][f"up-{stack}"]
    [download] = [
        step for step in job["steps"] if step.get("uses", "").startswith("actions/download-artifact@")
    ]
    assert download["with"]["pattern"] == "digest-*"
    assert (download["with"]["merge-multiple"], download["with"]["path"]) == (
        "true",
        "${{ runner.temp }}/digests",
    )
    deploy = job["steps"][-2]["run"]
    assert deploy.startswith(f".venv/bin/venta deploy {stack} ") and deploy.endswith(DIGESTS_ARG)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_steps_with_logic_call_the_repos_entry_points(path: Path) -> None:
    """A `run` step is one call of venta or of a script in the repo, so the tests run the same logic."""
    entry = re.compile(r"^(uv sync --frozen && )?(bash scripts/[\w/.-]+\.sh|\.venv/bin/venta) ")
    runs = [step["run"] for step in steps(workflow(path.name)) if "run" in step]
    assert [run for run in runs if "\n" in run.strip() or not entry.match(run.strip() + " ")] == []


def test_the_test_job_builds_the_toolchains_with_go_and_caches_only_their_binaries() -> None:
    job = workflow("test.yml")["jobs"]["test"]
    [go] = [step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-go@")]
    assert go["with"]["go-version"].startswith("1.26")
    [cache] = [step for step in job["steps"] if step.get("uses", "").startswith("actions/cache@")]
    paths = cache["with"]["path"].split()
    assert paths and all(path.startswith("~/.cache/venta-toolchain/") for path in paths)
    assert not [path for path in paths if "/go" in path or path.endswith("venta-toolchain/")]
    assert "hashFiles('scripts/toolchain/**')" in cache["with"]["key"]
    # The Docker daemon and kubelet the tests start need a privileged container.
    assert "--privileged" in job["container"]["options"]
