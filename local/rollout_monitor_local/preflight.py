"""`make deploy`'s check before its first AWS call: credentials and a region, or one line why not.

Resolved locally, the way botocore (and so SAM CLI) resolves them: environment, profile,
SSO, container or instance role. Nothing is sent to AWS, so it neither hangs nor prints a
traceback on a machine without an account or a network.

    .venv/bin/python -m rollout_monitor_local.preflight   # exit 0, or 1 with one line on stderr
"""

from __future__ import annotations

import os
import sys
import tomllib

import boto3
from botocore.exceptions import BotoCoreError

from rollout_monitor_local import samconfig

RERUN = "then rerun make deploy"


def problem() -> str | None:
    """Why `sam deploy` could not reach AWS from here, or None if it could."""
    try:
        saved_region = samconfig.setting("region")
        profile = None if os.environ.get("AWS_PROFILE") else samconfig.setting("profile")
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
        region = session.region_name or saved_region
    except tomllib.TOMLDecodeError as exc:
        return f"samconfig.toml is not valid TOML ({exc}): fix it, {RERUN}"
    except BotoCoreError as exc:  # a named profile that does not exist, a broken config
        return f"AWS configuration unusable ({exc}): fix it, {RERUN}"
    if credentials is None:
        return (
            "no AWS credentials found: configure them with `aws configure` or "
            f"AWS_PROFILE/AWS_ACCESS_KEY_ID, {RERUN}"
        )
    if not region:
        return (
            "no AWS region set: run `aws configure set region <region>` or set "
            f"AWS_DEFAULT_REGION, {RERUN}"
        )
    return None


def main() -> int:
    found = problem()
    if found is not None:
        print(found, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
