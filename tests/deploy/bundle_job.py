"""Run inside the unzipped bundle by `test_bundle.py`, under CPython 3.13 with only the
bundle and an old Lambda runtime's boto3/botocore on its path: a user, a provider with a
stored (KMS-encrypted) key, a schedule and its job, then the runner's Lambda entry point
on that job. Prints one JSON line: what happened, and where each package came from.

Not a test module: it imports nothing but what the bundle ships.
"""
import json
import os
import sys

import boto3
import botocore
import pydantic_core

import app
from chalicelib import auth, jobs, keys, schedules, tables, user_providers


class Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000


os.environ["KMS_KEY_ID"] = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
user, _ = auth.register("bundle@example.com", "password123")
provider = user_providers.ProviderBody(kind="openai", base_url=os.environ["PROVIDER_URL"], models=[{"id": "t"}])
user_providers.put_provider(user.id, "fake", provider)
keys.put_key(user.id, "fake", "sk-bundle-0123456789")
schedule = schedules.create(user.id, schedules.ScheduleCreate(
    name="bundle", models=["fake/t"], prompt="Say hello.", max_tokens=16, temperature=0.0, interval_hours=1,
))
job = jobs.submit(schedules.JOB_TYPE, user.id, {"schedule_id": schedule["id"], "trigger": "manual"},
                  schedule_id=schedule["id"])
outcome = app.runner({"job_id": job.job_id}, Context())
print(json.dumps({
    "outcome": outcome,
    "user_id": user.id,
    "python": list(sys.version_info[:2]),
    "botocore": botocore.__version__,
    "files": {m.__name__: m.__file__ for m in (app, tables, boto3, botocore, pydantic_core)},
}))
