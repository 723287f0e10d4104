"""Durable executions (Lambda durable functions): the checkpoint-and-replay service that AWS's Durable
Execution SDK talks to, run in the same server.

- `operations.py`: the operation state machine, free of I/O: an `OperationUpdate` in, the operation and
  its history events out (what CheckpointDurableExecution does to one operation).
- `store.py`: the SQLite log under `--state-dir/durable/`: a checkpoint is committed before it is answered.
- `service.py`: executions: start, replay by re-invoking the function, timers, callbacks, stop.
- `routes.py`: the API's `/2025-12-01/...` operations, on one screen.
"""
