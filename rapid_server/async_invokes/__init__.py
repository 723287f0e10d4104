"""Event invokes (`InvocationType: Event`): the durable queue they wait in, the dispatcher that runs them
with Lambda's retries and backoff, and the destination records written for their outcomes. A producer of
invokes, as event_sources/ and durable/ are: each goes through the same front door as a caller's."""
