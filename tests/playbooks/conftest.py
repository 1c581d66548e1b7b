"""Fixtures for the playbook tests: a rerun and a --check run after the session's converge
(`deployed`, from tests/fixtures/deploy.py), whose recaps the idempotency tests read."""

from __future__ import annotations

import pytest

from infra.deploy import DeployResult
from tests.fixtures.deploy import Deploys, deploy_lab
from tests.fixtures.lab import Lab


@pytest.fixture(scope="session")
def rerun(deployed: Deploys, lab: Lab) -> DeployResult:
    """A second `site.yml` run on the converged lab."""
    result, _ = deploy_lab(lab)
    return result


@pytest.fixture(scope="session")
def check_run(rerun: DeployResult, lab: Lab) -> DeployResult:
    """`--check` on the converged lab."""
    result, _ = deploy_lab(lab, check=True)
    return result

