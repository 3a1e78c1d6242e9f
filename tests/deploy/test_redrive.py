"""`scripts/redrive.py` against moto's SQS: each on-failure record becomes a runner
invocation again (captured before it leaves botocore), and only then leaves the queue."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest

from scripts import redrive
from tests.conftest import LambdaInvokes


def _record(job_id: str) -> str:
    """The shape of Lambda's on-failure destination record for an async invocation."""
    return json.dumps({
        "version": "1.0",
        "timestamp": "2026-11-30T09:00:00.000Z",
        "requestContext": {"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:runner:$LATEST",
                           "condition": "EventAgeExceeded", "approximateInvokeCount": 2},
        "requestPayload": {"job_id": job_id},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
    })


@pytest.fixture
def queue(aws):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"runner-failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for body in (_record("job-1"), _record("job-2"), "not json", json.dumps({"requestPayload": {"x": 1}})):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def lambda_client():
    client = boto3.client("lambda")
    invokes = LambdaInvokes()
    client.meta.events.register("before-call.lambda.Invoke", invokes.record)
    return client, invokes


def _left(sqs, url) -> int:
    """Messages still in the queue, visible or being looked at."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_each_dropped_runner_event_is_invoked_again_then_deleted(queue, lambda_client):
    (sqs, url), (client, invokes) = queue, lambda_client
    counts = redrive.redrive(sqs, client, url, "benchmark-scheduler-dev-runner")
    assert counts == {"redriven": 2, "skipped": 2}
    assert sorted(invokes.job_ids) == ["job-1", "job-2"]
    assert set(invokes.function_names) == {"benchmark-scheduler-dev-runner"}
    assert _left(sqs, url) == 2  # what is not a runner event stays for a person to look at


def test_a_dry_run_changes_nothing(queue, lambda_client):
    (sqs, url), (client, invokes) = queue, lambda_client
    assert redrive.redrive(sqs, client, url, "runner", dry_run=True)["redriven"] == 2
    assert invokes.job_ids == [] and _left(sqs, url) == 4
