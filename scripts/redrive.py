"""Redrive the runner's failure queue: invoke the runner again for each event Lambda dropped.

    python -m scripts.redrive QUEUE_URL RUNNER_FUNCTION_NAME [--dry-run] [--max N]

Each message is Lambda's on-failure record of one asynchronous invocation (its
`requestPayload` is the runner's event, `{"job_id": ...}`). The runner's event is queued
again (`InvocationType=Event`) and the message deleted only once Lambda accepted it. Safe
to repeat: the runner acts only on a job it moves to `running` itself, so an event for a
job that already ran, or that the tick re-dispatched meanwhile, changes nothing. A message
that is not such a record is left in the queue and reported.

Uses the standard AWS environment (credentials, region). Lives outside `chalicelib`.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def runner_event(body: str) -> dict[str, str] | None:
    """The runner's event from an on-failure record, or None if it is not one."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    payload = record.get("requestPayload") if isinstance(record, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("job_id"), str) and payload["job_id"]:
        return {"job_id": payload["job_id"]}
    return None


def redrive(sqs: Any, lambda_client: Any, queue_url: str, function: str, *,
            dry_run: bool = False, limit: int = 1000) -> dict[str, int]:
    counts = {"redriven": 0, "skipped": 0}
    seen: set[str] = set()
    while counts["redriven"] + counts["skipped"] < limit:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=60).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            event = runner_event(message["Body"])
            if event is None:
                print(f"left in the queue (not a runner event): {message['MessageId']}", file=sys.stderr)
                counts["skipped"] += 1
                continue
            print(f"{'would redrive' if dry_run else 'redrive'} job {event['job_id']}")
            if not dry_run:
                lambda_client.invoke(FunctionName=function, InvocationType="Event",
                                     Payload=json.dumps(event).encode())
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            counts["redriven"] += 1
    return counts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queue_url")
    parser.add_argument("function")
    parser.add_argument("--dry-run", action="store_true", help="list what would be redriven, change nothing")
    parser.add_argument("--max", type=int, default=1000, help="at most this many messages (default 1000)")
    args = parser.parse_args(argv)
    import boto3

    counts = redrive(boto3.client("sqs"), boto3.client("lambda"), args.queue_url, args.function,
                     dry_run=args.dry_run, limit=args.max)
    print(f"{counts['redriven']} redriven, {counts['skipped']} left in the queue")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
