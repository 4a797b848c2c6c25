"""Settings: one object, read from the environment (prefix PHASEGATE_) at the entry point and
passed down. Nothing else in phasegate reads the environment; child processes get theirs from
`Settings.as_env()`."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path.home() / ".phasegate"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHASEGATE_", extra="ignore")

    home: Path = DEFAULT_HOME
    database_url: str = ""  # default: SQLite at <home>/ledger.db

    slack_api_url: str = "https://slack.com/api/"
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_app_token: SecretStr = SecretStr("")  # xapp-...: also take interactions over Socket Mode
    slack_host: str = "127.0.0.1"
    slack_port: int = 3000

    # Keys the audit chain's new links (HMAC-SHA-256), so that database access alone cannot recompute
    # them; keep it out of the database's reach. Empty: plain SHA-256 (phasegate.ledger.chain).
    audit_key: SecretStr = SecretStr("")

    jira_sites: dict[str, str] = {}  # JSON: a file's jira.url -> the URL to use instead (the demo's stand-ins)
    jira_email: str | None = None  # Jira Cloud: email + API token
    jira_api_token: SecretStr | None = None
    jira_pat: SecretStr | None = None  # Jira Data Center: personal access token
    jira_timeout: float = 10.0

    metrics_base_url: str | None = None  # resolves metric URLs written as paths ("/api/2.0/...")
    metrics_timeout: float = 10.0
    # A gate's evidence is read up to this many times while a source has a passing outage (503, 429, no
    # connection), waiting Retry-After or evidence_retry_seconds between reads, before "missing" is frozen.
    evidence_attempts: int = Field(default=3, ge=1)
    evidence_retry_seconds: float = Field(default=10.0, ge=0)
    evidence_max_wait_seconds: float = Field(default=120.0, ge=0)  # a longer Retry-After is not waited for

    prefect_port: int = 4200  # where `phasegate up` starts Prefect when PREFECT_API_URL is unset; 0: any
    runner_poll_seconds: float = Field(default=1.0, gt=0)
    watch_interval_seconds: int = Field(default=300, ge=10)  # how often the gate watch runs
    # How often a running flow run tells Prefect it is alive (Prefect's own minimum is 30 s); a run
    # silent for 2.5 beats is marked Crashed by the automation phasegate/ops/crash_detection.py installs.
    heartbeat_seconds: int = Field(default=30, ge=30)

    portfolio_channel: str = ""  # Slack channel id for the weekly portfolio digest; empty: no digest
    weekly_concurrency: int = Field(default=8, ge=1, le=32)  # engagements collected at once for weekly reports

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def audit_key_bytes(self) -> bytes | None:
        key = self.audit_key.get_secret_value()
        return key.encode() if key else None

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ledger.db'}"

    def as_env(self) -> dict[str, str]:
        """The PHASEGATE_ variables from which a child process builds these same settings (unset
        optional values are left out)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict):
                value = json.dumps(value)
            env[f"{self.model_config.get('env_prefix', '')}{name}".upper()] = str(value)
        return env
