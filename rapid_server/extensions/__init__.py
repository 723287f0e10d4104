"""Extensions and their telemetry, as on Lambda (reference section 3).

- `launch.py`: the external extensions (`<opt>/extensions/*`), spawned before the runtime.
- `agents.py`: the Extensions API `2020-01-01` state: who registered, who is parked on `event/next`, and
  which of them the environment still waits for (Init, each invoke, shutdown).
- `events.py`: the Telemetry API `2022-07-01` records (`{"time","type","record"}`), built in one place.
- `telemetry.py`: subscriptions, their bounded buffers and the in-order HTTP delivery.
- `api.py`: the routes, on the same listener as the Runtime API (`AWS_LAMBDA_RUNTIME_API`).
- `host.py`: one environment's extensions, the few hooks `data_plane/extension_hooks.py` calls.

Nothing here is imported for a function without extensions (checked in the environment's start).
"""
