"""One mapping's queue, through boto3: blocking calls, made only from the pollers' threads.

The endpoint is boto3's own choice (`AWS_ENDPOINT_URL_SQS` or `AWS_ENDPOINT_URL` in the server's
environment, or the profile's `endpoint_url`, honoured since boto3 1.28), unless the mapping names one;
the region is the queue ARN's; the credentials are boto3's usual chain. One client per mapping, shared
by its pollers' threads (a boto3 client is thread-safe, a session is not: each mapping gets its own).

boto3 is imported here, in a poller's thread, the first time a mapping starts: ~300 ms of import that a
server without event sources never pays, and that does not stall the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .mapping import SqsSource

LONG_POLL_S = 20  # the service's long poll (WaitTimeSeconds), the most SQS allows
DELETE_BATCH_MAX = 10  # DeleteMessageBatch's entries per call


class QueueProblem(Exception):
    """The queue cannot be reached or used (no credentials, no such queue, refused): the poller says so
    and tries again later."""


class SqsQueue:
    def __init__(self, source: SqsSource, connections: int):
        self._source = source
        self._connections = connections
        self._client: Any = None
        self._lock = threading.Lock()
        self.url = ""

    def connect(self) -> bool:
        """The client and the queue's URL (GetQueueUrl, so any SQS-compatible endpoint names it its way).
        True if this call connected (the first poller to get here does)."""
        with self._lock:
            if self._client is not None:
                return False
            self._connect()
            return True

    def _connect(self) -> None:
        import boto3
        import botocore.config
        import botocore.exceptions

        queue = self._source.queue
        try:
            session = boto3.session.Session()
            client = session.client(
                "sqs",
                region_name=queue.region,
                endpoint_url=self._source.endpoint_url,
                config=botocore.config.Config(
                    max_pool_connections=max(10, self._connections),
                    read_timeout=LONG_POLL_S + 10,  # a long poll holds the connection up to 20 s
                    retries={"mode": "standard"},
                ),
            )
            self.url = client.get_queue_url(QueueName=queue.name, QueueOwnerAWSAccountId=queue.account)[
                "QueueUrl"
            ]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise QueueProblem(f"cannot reach queue {queue.arn}: {exc}") from None
        self._client = client

    def receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        import botocore.exceptions

        try:
            response = self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_s,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise QueueProblem(f"ReceiveMessage on {self._source.queue.arn}: {exc}") from None
        messages: list[dict[str, Any]] = response.get("Messages") or []
        return messages

    def release(self, receipt_handles: Sequence[str]) -> None:
        """Best effort: make messages visible again now (ChangeMessageVisibilityBatch to 0), for a batch a
        stopping poller received and will not run. Should this fail, they return after the timeout."""
        import botocore.exceptions

        for start in range(0, len(receipt_handles), DELETE_BATCH_MAX):
            chunk = receipt_handles[start : start + DELETE_BATCH_MAX]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(chunk)
            ]
            try:
                self._client.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        """DeleteMessageBatch, ten at a time; the problems, one line each (a handle that expired)."""
        import botocore.exceptions

        problems: list[str] = []
        for start in range(0, len(receipt_handles), DELETE_BATCH_MAX):
            chunk = receipt_handles[start : start + DELETE_BATCH_MAX]
            entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)]
            try:
                response = self._client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                problems.append(f"DeleteMessageBatch on {self._source.queue.arn}: {exc}")
                continue
            for failure in response.get("Failed") or []:
                problems.append(f"DeleteMessageBatch: {failure.get('Code')}: {failure.get('Message')}")
        return problems
